//! PostgreSQL backend of udl: the platform's source of truth.
//!
//! [`PgStore`] is a [`udl_core::RecordStore`] over an sqlx pool; every statement is
//! parameterised and every identifier comes from entity metadata. It adds what only
//! PostgreSQL offers: closure-style [transactions](PgStore::transaction), bulk insert by
//! `COPY`, versioned [migrations](Migrator), and the platform's relational [models].

mod backend;
mod config;
mod copy;
mod error;
mod executor;
mod health;
mod migrate;
pub mod models;
mod pool_watch;
mod records;
pub mod sql;
mod statements;
mod store;
mod transaction;
pub mod values;

pub use config::PostgresConfig;
pub use error::classify;
pub use health::PgHealth;
pub use migrate::{Migration, Migrator};
pub use store::PgStore;
pub use transaction::PgTransaction;
pub use udl_core::{MigrationReport, MigrationState, MigrationStatus};
