//! udl's test kit: the conformance suite every backend runs against its real server, the
//! fixtures it uses, and discovery of the local servers started by `scripts/services up`.

pub mod conformance;
pub mod consumers;
pub mod fixtures;
pub mod http;
pub mod logs;
pub mod private_redis;
pub mod servers;
pub mod services;
pub mod toxiproxy;
pub mod wait;

pub use conformance::{Harness, Subject};
