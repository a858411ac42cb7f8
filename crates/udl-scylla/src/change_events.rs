//! `ce_events`: sanitized change events from PostgreSQL, keyed by event id, so an event
//! written again after a replay is the same row. Rows expire with the analytics TTL.

use chrono::{DateTime, Utc};
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
    /// after an error the whole call can be repeated.
    pub async fn write_many(&self, events: &[ChangeEventRow]) -> Result<u64> {
        let ttl = self.store.analytics_ttl().as_secs() as i32;
        let session = self.store.session().get_session();
        self.store
            .meter()
            .measure("ce_events.write_many", async move {
                ScyllaStore::bounded(self.in_flight, events.len(), |i| {
                    let e = &events[i];
                    let values = (
                        &e.id,
                        &e.event_type,
                        &e.source,
                        &e.subject,
                        e.time,
                        e.position,
                        &e.data,
                        ttl,
                    );
                    async move {
                        session
                            .execute_unpaged(&self.insert, values)
                            .await
                            .map(|_| 1)
                            .map_err(|e| classify(&e, "ce_events.write"))
                    }
                })
                .await
            })
            .await
    }
}
