//! Append-only event streams: usage and performance analytics events, and logs. Rows are
//! partitioned by (stream, time bucket) like metrics, carry free-form string attributes, and
//! are appended with a bounded number of requests in flight.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use scylla::statement::prepared::PreparedStatement;
use udl_core::Result;
use uuid::Uuid;

use crate::error::classify;
use crate::store::ScyllaStore;
use crate::timeseries::{check_series, check_time, invalid};

/// Most attributes on one event.
const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute name, in bytes.
const MAX_KEY_LEN: usize = 128;
/// Largest event (names and values), in bytes.
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Which table a stream lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTable {
    /// `usage_events`: performance and usage analytics; rows expire with the analytics TTL.
    Usage,
    /// `log_events`: high-volume logs; rows expire with the analytics TTL.
    Logs,
}

impl EventTable {
    pub(crate) fn name(self) -> &'static str {
        match self {
            EventTable::Usage => "usage_events",
            EventTable::Logs => "log_events",
        }
    }
}

/// One event. Attributes must be sanitized before they get here: no PHI, no secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When it happened (millisecond precision is kept).
    pub at: DateTime<Utc>,
    /// Unique id; two events of one stream may share a millisecond.
    pub id: Uuid,
    /// Name → value.
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event happening at `at` with a fresh id.
    pub fn new(at: DateTime<Utc>, attributes: BTreeMap<String, String>) -> Self {
        Event {
            at,
            id: Uuid::new_v4(),
            attributes,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        check_time(self.at)?;
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(invalid(format!(
                "an event holds at most {MAX_ATTRIBUTES} attributes"
            )));
        }
        let mut size = 0;
        for (key, value) in &self.attributes {
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(invalid(format!(
                    "attribute names must be 1 to {MAX_KEY_LEN} bytes"
                )));
            }
            size += key.len() + value.len();
        }
        if size > MAX_EVENT_BYTES {
            return Err(invalid(format!(
                "an event's attributes are limited to {MAX_EVENT_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// The streams of one event table.
#[derive(Clone)]
pub struct EventLog {
    store: ScyllaStore,
    insert: PreparedStatement,
    select: PreparedStatement,
    in_flight: usize,
}

impl EventLog {
    /// Prepares the statements for `table`; at most `in_flight` requests are outstanding
    /// during [`EventLog::append_many`].
    pub async fn new(store: &ScyllaStore, table: EventTable, in_flight: usize) -> Result<Self> {
        let (ks, table) = (store.keyspace(), table.name());
        let insert = store.prepare(format!(
            "INSERT INTO \"{ks}\".{table} (stream, bucket, at, id, attributes) VALUES (?, ?, ?, ?, ?) USING TTL ?"
        ))
        .await?;
        let select = store.prepare(format!(
            "SELECT at, id, attributes FROM \"{ks}\".{table} WHERE stream = ? AND bucket = ? AND at >= ? AND at < ?"
        ))
        .await?;
        Ok(EventLog {
            store: store.clone(),
            insert,
            select,
            in_flight: in_flight.max(1),
        })
    }

    /// The prepared insert, for comparing with the raw driver.
    pub fn insert_statement(&self) -> &PreparedStatement {
        &self.insert
    }

    /// Appends events to `stream`. Every event is checked first (one bad event and nothing is
    /// sent); then they go with at most `in_flight` requests outstanding. Appends are
    /// idempotent (an event's id is its key), so after an error the call can be repeated.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "events.append_many")
    )]
    pub async fn append_many(&self, stream_name: &str, events: &[Event]) -> Result<u64> {
        self.store
            .meter()
            .measure("events.append_many", async move {
                check_series(stream_name)?;
                for event in events {
                    event.check()?;
                }
                let ttl = self.store.analytics_ttl().as_secs() as i32;
                let session = self.store.session().get_session();
                ScyllaStore::bounded(self.in_flight, events.len(), |i| {
                    let e = &events[i];
                    let values = (
                        stream_name,
                        self.store.bucket_of(e.at),
                        e.at,
                        e.id,
                        &e.attributes,
                        ttl,
                    );
                    async move {
                        session
                            .execute_unpaged(&self.insert, values)
                            .await
                            .map(|_| 1)
                            .map_err(|e| classify(&e, "append"))
                    }
                })
                .await
            })
            .await
    }

    /// Events of `stream` with `from <= at < to`, in time order (ties by id), across buckets.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "events.range")
    )]
    pub async fn range(
        &self,
        stream_name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Event>> {
        self.store
            .meter()
            .measure("events.range", async move {
                check_series(stream_name)?;
                check_time(from)?;
                check_time(to)?;
                let mut out = Vec::new();
                for bucket in self.store.bucket_of(from)..=self.store.bucket_of(to) {
                    let values = (stream_name, bucket, from, to);
                    self.store
                        .scan(
                            &self.select,
                            &values,
                            "range read",
                            |(at, id, attributes): (_, _, Option<BTreeMap<String, String>>)| {
                                let attributes = attributes.unwrap_or_default();
                                out.push(Event { at, id, attributes });
                                true
                            },
                        )
                        .await?;
                }
                Ok(out)
            })
            .await
    }
}
