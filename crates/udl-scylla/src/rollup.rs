//! Rollups of a time series per minute or hour: count, sum, min and max of each interval,
//! computed from the points and kept in `metric_rollups` (same partitioning by bucket), so
//! dashboards over long ranges read a few rows instead of every point.

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

use crate::error::classify;
use crate::store::ScyllaStore;
use crate::timeseries::{check_series, check_time, invalid, Point, TimeSeries};
use udl_core::Result;

/// Interval length of a rollup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// One row per minute.
    Minute,
    /// One row per hour.
    Hour,
}

impl Resolution {
    fn name(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
        }
    }

    fn span(self) -> TimeDelta {
        match self {
            Resolution::Minute => TimeDelta::minutes(1),
            Resolution::Hour => TimeDelta::hours(1),
        }
    }

    /// The interval holding `at` starts here.
    fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        // Whole minutes and hours since the epoch always round.
        at.duration_trunc(self.span()).unwrap_or(at)
    }
}

/// The aggregate of one interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rollup {
    /// Start of the interval.
    pub at: DateTime<Utc>,
    /// Points in the interval.
    pub count: i64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Rollup {
    /// The interval's mean.
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }
}

/// Aggregates time-ordered points into one rollup per non-empty interval.
fn aggregate(points: &[Point], resolution: Resolution) -> Vec<Rollup> {
    let mut out: Vec<Rollup> = Vec::new();
    for p in points {
        let at = resolution.floor(p.at);
        match out.last_mut() {
            Some(last) if last.at == at => last.add(p.value),
            _ => out.push(Rollup {
                at,
                count: 1,
                sum: p.value,
                min: p.value,
                max: p.value,
            }),
        }
    }
    out
}

impl TimeSeries {
    /// Computes the rollups of every whole interval touching `[from, to)` from the points
    /// and stores them (with the analytics TTL). Recomputing is harmless: rows are replaced.
    /// Returns the number of intervals written.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "rollups.roll_up")
    )]
    pub async fn roll_up(
        &self,
        series: &str,
        resolution: Resolution,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64> {
        self.store
            .meter()
            .measure("rollups.roll_up", async move {
            let start = resolution.floor(from);
            let end = match resolution.floor(to) {
                floor if floor == to => to,
                floor => floor + resolution.span(),
            };
            let points = self.range(series, start, end).await?;
            let rollups = aggregate(&points, resolution);
            let cql = format!(
                "INSERT INTO \"{}\".metric_rollups (series, resolution, bucket, at, count, sum, min, max) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?",
                self.store.keyspace()
            );
            let ttl = self.ttl_seconds();
            let session = self.store.session();
            ScyllaStore::bounded(self.in_flight, rollups.len(), |i| {
                let r = &rollups[i];
                let values = (
                    series,
                    resolution.name(),
                    self.bucket_of(r.at),
                    r.at,
                    r.count,
                    r.sum,
                    r.min,
                    r.max,
                    ttl,
                );
                let cql = cql.as_str();
                async move {
                    session
                        .execute_unpaged(cql, values)
                        .await
                        .map(|_| 1)
                        .map_err(|e| classify(&e, "roll up"))
                }
            })
            .await
            })
            .await
    }

    /// Stored rollups of `series` with `from <= at < to`, in time order, across buckets.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "rollups.rollups")
    )]
    pub async fn rollups(
        &self,
        series: &str,
        resolution: Resolution,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Rollup>> {
        self.store
            .meter()
            .measure("rollups.rollups", async move {
                check_series(series)?;
                check_time(from)?;
                check_time(to)?;
                if from > to {
                    return Err(invalid("range starts after it ends"));
                }
                let select = self
                    .store
                    .prepare(format!(
                        "SELECT at, count, sum, min, max FROM \"{}\".metric_rollups \
                     WHERE series = ? AND resolution = ? AND bucket = ? AND at >= ? AND at < ?",
                        self.store.keyspace()
                    ))
                    .await?;
                let mut out = Vec::new();
                for bucket in self.bucket_of(from)..=self.bucket_of(to) {
                    let values = (series, resolution.name(), bucket, from, to);
                    self.store
                        .scan(
                            &select,
                            &values,
                            "rollup read",
                            |(at, count, sum, min, max)| {
                                out.push(Rollup {
                                    at,
                                    count,
                                    sum,
                                    min,
                                    max,
                                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn points_aggregate_per_interval() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 9, 59, 30).unwrap();
        let points: Vec<Point> = [(0, 1.0), (20, 5.0), (40, 3.0), (100, -2.0)]
            .iter()
            .map(|&(s, value)| Point {
                at: t0 + TimeDelta::seconds(s),
                value,
            })
            .collect();
        let minutes = aggregate(&points, Resolution::Minute);
        let summary: Vec<(u32, i64, f64, f64, f64)> = minutes
            .iter()
            .map(|r| {
                (
                    chrono::Timelike::minute(&r.at),
                    r.count,
                    r.sum,
                    r.min,
                    r.max,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (59, 2, 6.0, 1.0, 5.0),
                (0, 1, 3.0, 3.0, 3.0),
                (1, 1, -2.0, -2.0, -2.0)
            ]
        );
        let hours = aggregate(&points, Resolution::Hour);
        assert_eq!(hours.len(), 2);
        assert_eq!(
            hours[1].at,
            Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
        );
        assert_eq!((hours[1].count, hours[1].mean()), (2, 0.5));
    }
}
