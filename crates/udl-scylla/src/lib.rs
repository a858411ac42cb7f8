//! ScyllaDB backend of udl: the platform's high-volume, append-mostly data (time series,
//! chat archives, analytics events, logs, reports). Tests run against Apache Cassandra 5.0,
//! which speaks the same CQL.
//!
//! [`ScyllaStore`] is one driver session: token-aware, data-center-aware routing, a fixed pool
//! per host, per-request consistency, a client-side timeout, and neither driver retries nor
//! speculative execution (udl's resilience layer owns retrying, so attempts do not multiply).
//! [`ScyllaMigrator`] applies versioned CQL under a lightweight-transaction lock and waits for
//! schema agreement after every statement.

mod backend;
mod change_events;
mod config;
pub mod cql;
mod error;
mod events;
mod key_size;
mod lock;
mod migrate;
pub mod models;
mod records;
mod reports;
mod rollup;
mod session;
mod spool;
mod store;
mod timeseries;
mod values;

pub use change_events::{ChangeEventLog, ChangeEventRow};
pub use config::{Replication, ScyllaConfig};
pub use error::classify;
pub use events::{Event, EventLog, EventTable};
pub use key_size::MAX_PARTITION_KEY_BYTES;
pub use migrate::{CqlMigration, ScyllaMigrator};
pub use records::{ScanPage, ScyllaRecords, TableScan};
pub use reports::{Period, ReportRow, Reports};
pub use rollup::{Resolution, Rollup};
pub use session::ScyllaSession;
pub use spool::{Delivery, SpoolFile, SpooledAnalytics};
pub use store::ScyllaStore;
pub use timeseries::{Point, PointPage, TimeSeries};
