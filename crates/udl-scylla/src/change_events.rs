//! `ce_events`: sanitized change events from PostgreSQL, keyed by event id, so an event
//! written again after a replay is the same row. Rows expire with the analytics TTL.

use chrono::{DateTime, Utc};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use udl_core::Result;

use crate::error::classify;
use crate::store::ScyllaStore;

/// One change event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEventRow {
    /// Event id (stable across replays).
    pub id: String,
    /// `ce.<entity>.<action>`.
    pub event_type: String,
    /// Event source.
    pub source: String,
    /// Record id or token, when the event has one.
    pub subject: Option<String>,
    /// Commit time.
    pub time: DateTime<Utc>,
    /// Commit position in PostgreSQL's WAL (orders one record's events).
    pub position: i64,
    /// The sanitized fields, as JSON text.
    pub data: String,
}

/// Rows per unlogged batch: few enough to stay under the server's batch-size warning for
/// events of a few hundred bytes.
const ROWS_PER_BATCH: usize = 10;

/// Writes change events with a bounded number of requests in flight.
pub struct ChangeEventLog {
    store: ScyllaStore,
    insert: PreparedStatement,
    in_flight: usize,
}

impl ChangeEventLog {
    /// Prepares the insert; at most `in_flight` writes are outstanding in
    /// [`ChangeEventLog::write_many`].
    pub async fn new(store: &ScyllaStore, in_flight: usize) -> Result<Self> {
        let insert = store
            .prepare(format!(
                "INSERT INTO \"{}\".ce_events (id, type, source, subject, time, position, data) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?",
                store.keyspace()
            ))
            .await?;
        Ok(ChangeEventLog {
            store: store.clone(),
            insert,
            in_flight: in_flight.max(1),
        })
    }

    /// Writes `events`; returns once every one is acknowledged. Idempotent by event id, so
    /// after an error the whole call can be repeated. Rows go in small unlogged batches (one
    /// round trip for several rows; each row is its own partition, so nothing is atomic
    /// across them, and nothing needs to be).
    pub async fn write_many(&self, events: &[ChangeEventRow]) -> Result<u64> {
        let ttl = self.store.analytics_ttl().as_secs() as i32;
        let session = self.store.session().get_session();
        let chunks: Vec<&[ChangeEventRow]> = events.chunks(ROWS_PER_BATCH).collect();
        self.store
            .meter()
            .measure("ce_events.write_many", async move {
                ScyllaStore::bounded(self.in_flight, chunks.len(), |i| {
                    let chunk = chunks[i];
                    let mut batch = Batch::new(BatchType::Unlogged);
                    let values: Vec<_> = chunk
                        .iter()
                        .map(|e| {
                            batch.append_statement(self.insert.clone());
                            (
                                &e.id,
                                &e.event_type,
                                &e.source,
                                &e.subject,
                                e.time,
                                e.position,
                                &e.data,
                                ttl,
                            )
                        })
                        .collect();
                    async move {
                        session
                            .batch(&batch, values)
                            .await
                            .map(|_| chunk.len() as u64)
                            .map_err(|e| classify(&e, "ce_events.write"))
                    }
                })
                .await
            })
            .await
    }
}
