//! The PHI access audit: a layer that records every access to PHI-bearing entities, the writer
//! that appends those records to the hash-chained log with group commit, and the walk that
//! verifies the chain, and the compliance reports read from it.

mod layer;
pub mod report;
mod verify;
mod writer;

pub(crate) use layer::new_entry;
pub use layer::AuditedStore;
pub use verify::{verify_log, BrokenEntry, ChainProblem, ChainReport};
pub use writer::AuditWriter;
