//! MongoDB backend of udl: documents, conversations and embeddings for retrieval.
//!
//! [`MongoStore`] is a [`udl_core::RecordStore`] over one database of the official driver.
//! The entity's id field is stored as `_id`; every other field under its own name. What the
//! server can do (transactions on a replica set; FerretDB's gaps) is detected at connect and
//! declared as capabilities, never faked.

mod backend;
mod changes;
mod config;
mod convert;
mod error;
mod expiry;
mod filter;
mod hidden;
mod lock;
mod migrate;
pub mod models;
mod records;
mod retained;
mod server;
mod session;
mod store;
mod transaction;
mod vector;

pub use changes::{Change, ChangeFeed, ChangeKind, ResumePoint};
pub use config::MongoConfig;
pub use error::classify;
pub use hidden::HIDDEN_BY;
pub use migrate::{MongoMigration, MongoMigrator, Step};
pub use retained::HELD_EXPIRES_AT;
pub use server::ServerInfo;
pub use store::MongoStore;
pub use transaction::MongoTransaction;
pub use udl_core::{MigrationReport, MigrationState, MigrationStatus};
pub use vector::{
    exact_top_k, Calibration, VectorIndex, VectorIndexStatus, EXACT_SCAN_LIMIT, RECALL_TARGET,
    SCAN_LIMIT,
};
