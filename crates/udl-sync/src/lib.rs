//! Change data capture for udl: PostgreSQL's logical decoding (`pgoutput`) read over the
//! streaming replication protocol, each change sanitized by its entity's declarations into a
//! `ce.*` CloudEvent, what was done to its fields recorded in a sealed redaction ledger, and
//! the event written to sinks (ScyllaDB analytics) before the slot is acknowledged; events
//! emitted through the transactional outbox travel the same way.

pub mod column_value;
pub mod event;
mod in_flight;
pub mod ledger;
pub mod outbox;
pub mod pgoutput;
pub mod plan;
pub mod relay;
pub mod sanitize;
pub mod sink;
pub mod slot;
pub mod snapshot;

pub use event::{ChangeEvent, ChangeKind, Redaction};
pub use ledger::{Ledger, LedgerRecord};
pub use outbox::{EventPlan, OutboxMessage, OUTBOX_STORE};
pub use plan::{EntityPlan, StripReason, Treatment};
pub use relay::{Relay, RelaySettings, RelayState};
pub use sanitize::{BoundTable, ChangePlace, Sanitized, Sanitizer, VaultEntry};
pub use sink::{
    CacheInvalidation, NatsSettings, NatsSink, Projection, ProjectionSink, Sink,
    UserPlansProjection,
};
pub use slot::{CaptureStatus, ReplicationTarget};
