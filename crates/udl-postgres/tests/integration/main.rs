//! The integration tests, as one test binary: every test binary links all of the crate's
//! dependencies, so one per crate keeps the build's disk use and link time small.

mod common;
mod conformance;
mod errors;
mod migrations;
mod models;
mod pool;
mod tls;
mod transactions;
