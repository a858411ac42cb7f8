//! Analytics writes that outlive a ScyllaDB outage. [`SpooledAnalytics`] writes metric points
//! and events to ScyllaDB; when it cannot be reached (a temporary error), the write is
//! appended to a local durable spool and acknowledged as [`Delivery::Spooled`]. While
//! anything waits in the spool, new writes queue behind it, and [`SpooledAnalytics::replay`]
//! sends them in the order they were accepted once ScyllaDB answers again.
//!
//! Replay is at-least-once; analytics rows are upserts by key (series and time, stream and
//! event id), so a write replayed twice leaves the same rows. Input is checked before it is
//! spooled, so the spool never holds a write ScyllaDB would refuse.

mod file;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};
use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_metrics::Metrics;
use uuid::Uuid;

use crate::timeseries::check_series;
use crate::{Event, EventLog, EventTable, Point, ScyllaStore, TimeSeries};
pub use file::SpoolFile;

/// Entries sent per replay step (confirmed together).
const REPLAY_STEP: usize = 64;

/// Where an accepted write went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// ScyllaDB has it.
    Written,
    /// The spool has it, on disk; ScyllaDB gets it on replay.
    Spooled,
}

/// Metric points and events, spooled while ScyllaDB is unreachable.
pub struct SpooledAnalytics {
    series: TimeSeries,
    usage: EventLog,
    logs: EventLog,
    spool: SpoolFile,
    replaying: tokio::sync::Mutex<()>,
    metrics: Option<Arc<Metrics>>,
}

fn corrupt() -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        "an analytics spool entry has an unexpected shape",
    )
    .with_store(StoreKind::SCYLLA)
    .with_operation("replay")
}

fn time_of(ms: &Json) -> Result<DateTime<Utc>> {
    ms.as_i64()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(corrupt)
}

fn points_entry(series: &str, points: &[Point]) -> Json {
    let at: Vec<i64> = points.iter().map(|p| p.at.timestamp_millis()).collect();
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    json!({ "points": series, "at": at, "values": values })
}

fn events_entry(table: EventTable, stream: &str, events: &[Event]) -> Json {
    let items: Vec<Json> = events
        .iter()
        .map(|e| json!({ "at": e.at.timestamp_millis(), "id": e.id, "attributes": e.attributes }))
        .collect();
    json!({ "events": stream, "table": table.name(), "items": items })
}

fn decode_points(entry: &Json) -> Result<Vec<Point>> {
    let (Some(at), Some(values)) = (entry["at"].as_array(), entry["values"].as_array()) else {
        return Err(corrupt());
    };
    if at.len() != values.len() {
        return Err(corrupt());
    }
    at.iter()
        .zip(values)
        .map(|(at, value)| {
            Ok(Point {
                at: time_of(at)?,
                value: value.as_f64().ok_or_else(corrupt)?,
            })
        })
        .collect()
}

fn decode_events(entry: &Json) -> Result<Vec<Event>> {
    let items = entry["items"].as_array().ok_or_else(corrupt)?;
    items
        .iter()
        .map(|item| {
            let attributes: BTreeMap<String, String> =
                serde_json::from_value(item["attributes"].clone()).map_err(|_| corrupt())?;
            Ok(Event {
                at: time_of(&item["at"])?,
                id: item["id"]
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .ok_or_else(corrupt)?,
                attributes,
            })
        })
        .collect()
}

impl SpooledAnalytics {
    /// Prepares the writers on `store` and opens the spool in `dir` (taking its lock); at
    /// most `in_flight` requests are outstanding per write.
    pub async fn new(store: &ScyllaStore, dir: &Path, in_flight: usize) -> Result<Self> {
        Ok(SpooledAnalytics {
            series: TimeSeries::new(store, in_flight).await?,
            usage: EventLog::new(store, EventTable::Usage, in_flight).await?,
            logs: EventLog::new(store, EventTable::Logs, in_flight).await?,
            spool: SpoolFile::open(dir)?,
            replaying: tokio::sync::Mutex::new(()),
            metrics: None,
        })
    }

    /// Reports the spool's depth and replays to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        metrics.set_spool_depth(StoreKind::SCYLLA, self.spool.depth());
        self.metrics = Some(metrics);
        self
    }

    /// Writes waiting in the spool.
    pub fn depth(&self) -> u64 {
        self.spool.depth()
    }

    fn events(&self, table: EventTable) -> &EventLog {
        match table {
            EventTable::Usage => &self.usage,
            EventTable::Logs => &self.logs,
        }
    }

    /// Writes `points` of `series` (see [`TimeSeries::write_many`]), or spools them.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "analytics.write_points")
    )]
    pub async fn write_points(&self, series: &str, points: &[Point]) -> Result<Delivery> {
        for point in points {
            TimeSeries::check(series, point)?;
        }
        self.deliver(
            || async { self.series.write_many(series, points).await.map(drop) },
            || points_entry(series, points),
        )
        .await
    }

    /// Appends `events` to `stream` of `table` (see [`EventLog::append_many`]), or spools them.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "analytics.append_events")
    )]
    pub async fn append_events(
        &self,
        table: EventTable,
        stream: &str,
        events: &[Event],
    ) -> Result<Delivery> {
        check_series(stream)?;
        for event in events {
            event.check()?;
        }
        self.deliver(
            || async {
                self.events(table)
                    .append_many(stream, events)
                    .await
                    .map(drop)
            },
            || events_entry(table, stream, events),
        )
        .await
    }

    async fn deliver<F, Fut>(&self, write: F, entry: impl FnOnce() -> Json) -> Result<Delivery>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        // Behind a backlog, a write waits its turn so that replay keeps acceptance order.
        if self.spool.depth() == 0 {
            match write().await {
                Ok(()) => return Ok(Delivery::Written),
                Err(e) if !e.is_temporary() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "ScyllaDB unreachable; analytics write spooled")
                }
            }
        }
        self.spool.append(&entry())?;
        self.report_depth();
        Ok(Delivery::Spooled)
    }

    fn report_depth(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.set_spool_depth(StoreKind::SCYLLA, self.spool.depth());
        }
    }

    async fn apply(&self, entry: &Json) -> Result<()> {
        if let Some(series) = entry["points"].as_str() {
            return self
                .series
                .write_many(series, &decode_points(entry)?)
                .await
                .map(drop);
        }
        let (Some(stream), Some(table)) = (entry["events"].as_str(), entry["table"].as_str())
        else {
            return Err(corrupt());
        };
        let table = [EventTable::Usage, EventTable::Logs]
            .into_iter()
            .find(|t| t.name() == table)
            .ok_or_else(corrupt)?;
        self.events(table)
            .append_many(stream, &decode_events(entry)?)
            .await
            .map(drop)
    }

    /// Sends spooled writes to ScyllaDB, oldest first, until the spool is empty (the count
    /// sent) or ScyllaDB fails (that error; what was sent before it stays sent). An entry
    /// ScyllaDB refuses for good is logged and dropped rather than blocking every later one.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "analytics.replay")
    )]
    pub async fn replay(&self) -> Result<u64> {
        let _one_replay_at_a_time = self.replaying.lock().await;
        let mut sent = 0;
        loop {
            let step = self.spool.peek(REPLAY_STEP)?;
            if step.is_empty() {
                return Ok(sent);
            }
            let mut confirmed = None;
            let mut failure = None;
            for (index, (offset, entry)) in step.iter().enumerate() {
                match self.apply(entry).await {
                    Ok(()) => {}
                    Err(e) if e.is_temporary() => {
                        failure = Some(e);
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "spooled analytics write refused by ScyllaDB; dropped");
                    }
                }
                confirmed = Some((*offset, index as u64 + 1));
            }
            if let Some((offset, entries)) = confirmed {
                self.spool.confirm(offset, entries)?;
                sent += entries;
                if let Some(metrics) = &self.metrics {
                    metrics.count_replayed(StoreKind::SCYLLA, entries);
                }
                self.report_depth();
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }

    /// Replays every `every` while anything is spooled, until `stop` is dropped or sent.
    pub async fn replay_until(
        &self,
        every: Duration,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
            if self.depth() > 0 {
                match self.replay().await {
                    Ok(sent) => tracing::info!(sent, "spooled analytics writes replayed"),
                    Err(e) => {
                        tracing::warn!(error = %e, "ScyllaDB still unreachable; replay later")
                    }
                }
            }
        }
    }
}
