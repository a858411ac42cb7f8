//! Time-series metrics: points partitioned by (series, time bucket) so no partition grows
//! without bound, written through one prepared statement with a bounded number of requests in
//! flight, read back across buckets in time order, a page at a time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::error::{classify, unexpected_shape};
use crate::store::ScyllaStore;

/// Longest series name, in bytes.
const MAX_SERIES_LEN: usize = 256;
/// Rows per unlogged batch (all of one partition).
const MAX_BATCH_ROWS: usize = 100;
/// Rows fetched per round trip when reading.
const READ_PAGE: i32 = 5_000;

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// When it was measured (millisecond precision is kept).
    pub at: DateTime<Utc>,
    /// The value.
    pub value: f64,
}

/// A page of points and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct PointPage {
    /// Points in time order.
    pub points: Vec<Point>,
    /// Pass as `after` for the next page; `None` when the range is exhausted.
    pub next: Option<DateTime<Utc>>,
}

/// Metrics in the `metric_points` table (created by [`crate::models::migrations`]).
#[derive(Clone)]
pub struct TimeSeries {
    pub(crate) store: ScyllaStore,
    insert: PreparedStatement,
    select: PreparedStatement,
    pub(crate) in_flight: usize,
}

pub(crate) fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidInput, message).with_store(StoreKind::SCYLLA)
}

/// The supported time range: 1970 to 2100. Anything else is a bug upstream (a seconds value
/// read as milliseconds, say) and would create partitions no read ever finds.
pub(crate) fn check_time(at: DateTime<Utc>) -> Result<()> {
    /// 2100-01-01T00:00:00Z in milliseconds.
    const LATEST_MS: i64 = 4_102_444_800_000;
    if !(0..LATEST_MS).contains(&at.timestamp_millis()) {
        return Err(invalid("timestamp outside the supported range (1970–2100)"));
    }
    Ok(())
}

pub(crate) fn check_series(series: &str) -> Result<()> {
    if series.is_empty() || series.len() > MAX_SERIES_LEN {
        return Err(invalid(format!(
            "series name must be 1 to {MAX_SERIES_LEN} bytes"
        )));
    }
    Ok(())
}

impl TimeSeries {
    /// Prepares the statements; at most `in_flight` requests are outstanding during
    /// [`TimeSeries::write_many`].
    pub async fn new(store: &ScyllaStore, in_flight: usize) -> Result<Self> {
        let ks = store.keyspace();
        let insert = store.prepare(format!(
            "INSERT INTO \"{ks}\".metric_points (series, bucket, at, value) VALUES (?, ?, ?, ?) USING TTL ?"
        ))
        .await?;
        let mut select = store.prepare(format!(
            "SELECT at, value FROM \"{ks}\".metric_points WHERE series = ? AND bucket = ? AND at > ? AND at < ?"
        ))
        .await?;
        select.set_page_size(READ_PAGE);
        Ok(TimeSeries {
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

    /// The partition (bucket number) holding `at`.
    pub fn bucket_of(&self, at: DateTime<Utc>) -> i64 {
        self.store.bucket_of(at)
    }

    pub(crate) fn ttl_seconds(&self) -> i32 {
        // The config bounds the TTL to 20 years, well inside i32.
        self.store.analytics_ttl().as_secs() as i32
    }

    /// Checks one point before anything is sent.
    pub(crate) fn check(series: &str, point: &Point) -> Result<()> {
        check_series(series)?;
        check_time(point.at)?;
        if !point.value.is_finite() {
            return Err(invalid("metric values must be finite numbers"));
        }
        Ok(())
    }

    /// Writes one point.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "time_series.write")
    )]
    pub async fn write(&self, series: &str, point: Point) -> Result<()> {
        self.store
            .meter()
            .measure("time_series.write", async move {
                Self::check(series, &point)?;
                let values = (
                    series,
                    self.bucket_of(point.at),
                    point.at,
                    point.value,
                    self.ttl_seconds(),
                );
                self.store
                    .session()
                    .get_session()
                    .execute_unpaged(&self.insert, values)
                    .await
                    .map(drop)
                    .map_err(|e| classify(&e, "write"))
            })
            .await
    }

    /// Writes many points of one series. Every point is checked first (one bad point and
    /// nothing is sent); then each partition's points go as unlogged batches of that partition
    /// only, with at most `in_flight` requests outstanding: memory stays bounded by the caller's
    /// slice and a slow cluster slows the caller down instead of queueing without bound.
    /// Writes are idempotent, so after an error the whole call can be repeated.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "time_series.write_many")
    )]
    pub async fn write_many(&self, series: &str, points: &[Point]) -> Result<u64> {
        self.store
            .meter()
            .measure("time_series.write_many", async move {
                for point in points {
                    Self::check(series, point)?;
                }
                let mut sorted: Vec<&Point> = points.iter().collect();
                sorted.sort_by_key(|p| (self.bucket_of(p.at), p.at));
                let chunks: Vec<&[&Point]> = sorted
                    .chunk_by(|a, b| self.bucket_of(a.at) == self.bucket_of(b.at))
                    .flat_map(|partition| partition.chunks(MAX_BATCH_ROWS))
                    .collect();
                let ttl = self.ttl_seconds();
                let session = self.store.session().get_session();
                ScyllaStore::bounded(self.in_flight, chunks.len(), |i| {
                    let chunk = chunks[i];
                    async move {
                        let rows: Vec<_> = chunk
                            .iter()
                            .map(|p| (series, self.bucket_of(p.at), p.at, p.value, ttl))
                            .collect();
                        let outcome = if let [row] = rows.as_slice() {
                            session.execute_unpaged(&self.insert, row).await
                        } else {
                            let mut batch = Batch::new(BatchType::Unlogged);
                            for _ in &rows {
                                batch.append_statement(self.insert.clone());
                            }
                            session.batch(&batch, rows).await
                        };
                        outcome
                            .map(|_| chunk.len() as u64)
                            .map_err(|e| classify(&e, "write"))
                    }
                })
                .await
            })
            .await
    }

    /// Points of `series` with `from <= at < to`, in time order, across every bucket.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "time_series.range")
    )]
    pub async fn range(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Point>> {
        self.store
            .meter()
            .measure("time_series.range", async move {
                let mut all = Vec::new();
                let mut after = None;
                loop {
                    let page = self.page(series, from, to, 100_000, after).await?;
                    all.extend(page.points);
                    match page.next {
                        Some(next) => after = Some(next),
                        None => return Ok(all),
                    }
                }
            })
            .await
    }

    /// Up to `limit` points of `series` with `from <= at < to` and `at > after`, in time
    /// order. Keyset paging: a point's time is unique within its series.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "time_series.page")
    )]
    pub async fn page(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
        after: Option<DateTime<Utc>>,
    ) -> Result<PointPage> {
        self.store
            .meter()
            .measure("time_series.page", async move {
                check_series(series)?;
                check_time(from)?;
                check_time(to)?;
                if limit == 0 {
                    return Err(invalid("page limit must be positive"));
                }
                // `at > lower` in CQL: one millisecond before `from` makes `from` itself included.
                let lower = after
                    .filter(|a| *a >= from)
                    .unwrap_or(from - chrono::Duration::milliseconds(1));
                let mut points = Vec::new();
                for bucket in self.bucket_of(lower.max(from))..=self.bucket_of(to) {
                    let values = (series, bucket, lower, to);
                    let full = self
                        .store
                        .scan(&self.select, &values, "range read", |(at, value)| {
                            points.push(Point { at, value });
                            points.len() < limit
                        })
                        .await?;
                    if full {
                        let next = points.last().map(|p| p.at);
                        return Ok(PointPage { points, next });
                    }
                }
                Ok(PointPage { points, next: None })
            })
            .await
    }

    /// How long the stored point at `at` has left to live, as the server reports it.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "time_series.ttl_of")
    )]
    pub async fn ttl_of(&self, series: &str, at: DateTime<Utc>) -> Result<Option<Duration>> {
        self.store
            .meter()
            .measure("time_series.ttl_of", async move {
            let cql = format!(
                "SELECT TTL(value) FROM \"{}\".metric_points WHERE series = ? AND bucket = ? AND at = ?",
                self.store.keyspace()
            );
            let result = self
                .store
                .session()
                .execute_unpaged(cql.as_str(), (series, self.bucket_of(at), at))
                .await
                .map_err(|e| classify(&e, "ttl read"))?;
            let rows = result
                .into_rows_result()
                .map_err(|_| unexpected_shape("ttl read"))?;
            Ok(rows
                .maybe_first_row::<(Option<i32>,)>()
                .map_err(|_| unexpected_shape("ttl read"))?
                .and_then(|(ttl,)| ttl)
                .map(|s| Duration::from_secs(s.max(0) as u64)))
            })
            .await
    }
}
