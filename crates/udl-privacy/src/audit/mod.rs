//! The PHI access audit: a layer that records every access to PHI-bearing entities, the writer
//! that makes those records durable with group commit (in a local journal, shipped to the
//! hash-chained log in PostgreSQL, or in that log directly), the walks that verify the log's
//! chain and the journals, and the compliance reports read from the log.

mod chain;
pub mod journal;
mod layer;
pub mod report;
mod report_html;
mod verify;
mod writer;

pub use journal::{verify_journals, JournalConfig, JournalReport};
pub use layer::new_entry;
pub use layer::AuditedStore;
pub use verify::{verify_log, BrokenEntry, ChainProblem, ChainReport};
pub use writer::AuditWriter;
