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

/// Most rows per unlogged batch.
const ROWS_PER_BATCH: usize = 10;
/// Most bytes per unlogged batch: under Cassandra's batch-size warning (5 KiB; ScyllaDB's is
/// far higher). A larger row goes alone, as a plain insert, which no batch limit applies to.
const BATCH_BYTES: usize = 4096;

impl ChangeEventRow {
    fn size(&self) -> usize {
        self.id.len()
            + self.event_type.len()
            + self.source.len()
            + self.subject.as_ref().map_or(0, String::len)
            + self.data.len()
            + 24
    }
}

/// `events` in consecutive groups of at most [`ROWS_PER_BATCH`] rows and [`BATCH_BYTES`]
/// (a row larger than that is a group of its own).
fn groups(events: &[ChangeEventRow]) -> Vec<&[ChangeEventRow]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, event) in events.iter().enumerate() {
        let size = event.size();
        if i > start && (i - start == ROWS_PER_BATCH || bytes + size > BATCH_BYTES) {
            groups.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < events.len() {
        groups.push(&events[start..]);
    }
    groups
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
    /// after an error the whole call can be repeated. Rows go in small unlogged batches (one
    /// round trip for several rows; each row is its own partition, so nothing is atomic
    /// across them, and nothing needs to be); a large row goes alone.
    pub async fn write_many<'a>(&self, events: &'a [ChangeEventRow]) -> Result<u64> {
        let ttl = self.store.analytics_ttl().as_secs() as i32;
        let session = self.store.session().get_session();
        let chunks = groups(events);
        self.store
            .meter()
            .measure("ce_events.write_many", async move {
                ScyllaStore::bounded(self.in_flight, chunks.len(), |i| {
                    let chunk = chunks[i];
                    let values = |e: &'a ChangeEventRow| {
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
                    };
                    let mut batch = Batch::new(BatchType::Unlogged);
                    let rows: Vec<_> = chunk
                        .iter()
                        .map(|e| {
                            batch.append_statement(self.insert.clone());
                            values(e)
                        })
                        .collect();
                    async move {
                        let written = match chunk {
                            [one] => session
                                .execute_unpaged(&self.insert, values(one))
                                .await
                                .map(|_| ()),
                            _ => session.batch(&batch, rows).await.map(|_| ()),
                        };
                        written
                            .map(|()| chunk.len() as u64)
                            .map_err(|e| classify(&e, "ce_events.write"))
                    }
                })
                .await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(data_len: usize) -> ChangeEventRow {
        ChangeEventRow {
            id: "0000000000000001-00000".into(),
            event_type: "ce.t.created".into(),
            source: "udl/postgres/udl/public".into(),
            subject: None,
            time: chrono::Utc::now(),
            position: 1,
            data: "x".repeat(data_len),
        }
    }

    #[test]
    fn rows_group_by_count_and_bytes_and_a_large_row_goes_alone() {
        let small: Vec<ChangeEventRow> = (0..25).map(|_| row(10)).collect();
        let sizes: Vec<usize> = groups(&small).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let mixed = vec![row(100), row(100_000), row(100), row(100)];
        let sizes: Vec<usize> = groups(&mixed).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [1, 1, 2], "the large row is a group of its own");
    }
}
