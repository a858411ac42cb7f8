//! udl: the data layer every service of the platform goes through, so that pooling, retries,
//! caching, encryption, masking, audit and retention cannot be forgotten.
//!
//! Entities declare their fields and each field's sensitivity once:
//!
//! ```
//! use udl::Entity;
//!
//! #[derive(Entity, Clone, PartialEq)]
//! #[udl(table = "notes")]
//! struct Note {
//!     #[udl(id, internal)]
//!     id: uuid::Uuid,
//!     #[udl(phi)]
//!     body: String,
//!     #[udl(internal)]
//!     author: String,
//! }
//! let meta = <Note as udl::Entity>::meta();
//! assert!(meta.has_phi());
//! assert!(meta.field("body").unwrap().handling.encrypt, "PHI is sealed at rest by default");
//! ```
//!
//! A PHI-bearing entity with an unclassified field does not compile:
//!
//! ```compile_fail
//! use udl::Entity;
//!
//! #[derive(Entity)]
//! #[udl(table = "notes")]
//! struct Note {
//!     #[udl(id, internal)]
//!     id: uuid::Uuid,
//!     #[udl(phi)]
//!     body: String,
//!     author: String, // error: this entity holds PHI, so every field must be classified
//! }
//! ```
//!
//! Nor does a sensitive key field that does not say why it is stored in the clear (keys cannot
//! be sealed), or a field that asks to be tokenized without being sensitive:
//!
//! ```compile_fail
//! #[derive(udl::Entity)]
//! #[udl(table = "notes")]
//! struct Note {
//!     #[udl(id, pii)] // error: declare #[udl(pii, plaintext = "...")]
//!     email: String,
//! }
//! ```
//!
//! ```compile_fail
//! #[derive(udl::Entity)]
//! #[udl(table = "notes")]
//! struct Note {
//!     #[udl(id, internal)]
//!     id: uuid::Uuid,
//!     #[udl(internal, tokenize)] // error: `tokenize` is for PII and PHI fields
//!     region: String,
//! }
//! ```
//!
//! With a reason, a sensitive field stays in the clear, and the reason is part of its
//! declaration:
//!
//! ```
//! #[derive(udl::Entity)]
//! #[udl(table = "chunks", store = "mongo")]
//! struct Chunk {
//!     #[udl(id, internal)]
//!     id: uuid::Uuid,
//!     #[udl(phi, plaintext = "similarity search")]
//!     embedding: Vec<f32>,
//! }
//! let field = <Chunk as udl::Entity>::meta().field("embedding").unwrap();
//! assert_eq!(field.handling.plaintext, Some("similarity search"));
//! ```
//!
//! What leaves the store in change events is declared too: a `tokenize` field travels as its
//! vault token, a `no_export` field not at all, and any other PII or PHI field is stripped:
//!
//! ```
//! #[derive(udl::Entity)]
//! #[udl(table = "sessions")]
//! struct TherapySession {
//!     #[udl(id, internal)]
//!     id: uuid::Uuid,
//!     #[udl(phi, tokenize)]
//!     patient_ref: String,
//!     #[udl(internal, no_export)]
//!     room_code: String,
//! }
//! let meta = <TherapySession as udl::Entity>::meta();
//! assert!(meta.field("patient_ref").unwrap().handling.tokenize);
//! assert!(meta.field("room_code").unwrap().handling.drop_from_export);
//! ```

mod backends;
#[cfg(feature = "cdc")]
mod change_capture;
#[cfg(all(feature = "mongo", feature = "cache"))]
mod change_follower;
pub mod config;
mod data_layer;
pub mod health;
#[cfg(feature = "mongo")]
mod mongo_transaction;
#[cfg(feature = "cdc")]
mod outbox;
#[cfg(feature = "privacy")]
mod privacy_setup;
#[cfg(feature = "scylla")]
mod spool;
#[cfg(feature = "postgres")]
mod transaction;

#[cfg(feature = "cdc")]
pub use change_capture::{nats_settings, relay_settings, RelaySinks};
pub use data_layer::DataLayer;
#[cfg(feature = "mongo")]
pub use mongo_transaction::MongoDataTransaction;
#[cfg(feature = "postgres")]
pub use transaction::Transaction;
#[cfg(feature = "cache")]
pub use udl_cache as cache;
pub use udl_config::UdlConfig;
pub use udl_core::*;
pub use udl_derive::Entity;
#[cfg(feature = "jobs")]
pub use udl_jobs as jobs;
pub use udl_metrics as metrics;
pub use udl_metrics::Metrics;
#[cfg(feature = "mongo")]
pub use udl_mongo as mongo;
#[cfg(feature = "postgres")]
pub use udl_postgres as postgres;
#[cfg(feature = "privacy")]
pub use udl_privacy as privacy;
#[cfg(feature = "redis")]
pub use udl_redis as redis;
pub use udl_resilience as resilience;
#[cfg(feature = "scylla")]
pub use udl_scylla as scylla;
#[cfg(feature = "cdc")]
pub use udl_sync as sync;
