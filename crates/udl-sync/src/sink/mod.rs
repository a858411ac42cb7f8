//! Where sanitized events go: ScyllaDB's `ce_events`, the NATS JetStream bus, the caches of
//! every udl process (invalidation), read models (projections), or nowhere (benchmarks, dry
//! runs). A sink returns only once its events are durable: the relay acknowledges the slot
//! after.

mod cache;
mod nats;
mod projection;

pub use cache::CacheInvalidation;
pub use nats::{NatsSettings, NatsSink};
pub use projection::{Projection, ProjectionSink, UserPlansProjection};

use udl_core::Result;
use udl_scylla::{ChangeEventLog, ChangeEventRow, ScyllaStore};

use crate::event::ChangeEvent;
use crate::in_flight::PublishTurn;

/// A destination for sanitized events.
pub enum Sink {
    /// ScyllaDB's analytics keyspace.
    Scylla(Box<ChangeEventLog>),
    /// A NATS JetStream stream.
    Nats(Box<NatsSink>),
    /// The tiered cache of every udl process: changed records are forgotten.
    Cache(Box<CacheInvalidation>),
    /// A read model kept current.
    Projection(Box<ProjectionSink>),
    /// Discards events (measuring the relay alone).
    Null,
}

/// Batches of writes in flight at once to ScyllaDB.
const SCYLLA_IN_FLIGHT: usize = 32;

impl Sink {
    /// The ScyllaDB sink of `store`.
    pub async fn scylla(store: &ScyllaStore) -> Result<Self> {
        let log = ChangeEventLog::new(store, SCYLLA_IN_FLIGHT).await?;
        Ok(Sink::Scylla(Box::new(log)))
    }

    /// The sink's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Scylla(_) => "scylla",
            Sink::Nats(_) => "nats",
            Sink::Cache(_) => "cache",
            Sink::Projection(_) => "projection",
            Sink::Null => "null",
        }
    }

    /// Writes `events`, returning once they are durable; idempotent by event id. A bus
    /// publishes on its `turn` (batches in commit order).
    pub(crate) async fn write(&self, events: &[&ChangeEvent], turn: &PublishTurn) -> Result<()> {
        match self {
            Sink::Nats(bus) => bus.write(events, turn).await,
            Sink::Cache(cache) => {
                cache.write(events).await;
                Ok(())
            }
            Sink::Projection(projection) => projection.write(events).await,
            Sink::Scylla(log) => {
                let rows: Vec<ChangeEventRow> = events
                    .iter()
                    .map(|e| ChangeEventRow {
                        id: e.id.clone(),
                        event_type: e.event_type(),
                        source: e.source.clone(),
                        subject: e.subject.clone(),
                        time: e.time,
                        position: e.position as i64,
                        data: e.data_json(),
                    })
                    .collect();
                log.write_many(&rows).await.map(|_| ())
            }
            Sink::Null => Ok(()),
        }
    }
}
