//! Real-time analytics: counters per time bucket, unique members (HyperLogLog) and top-N
//! (sorted sets), read back over a window by merging buckets. Time is always passed in, so
//! callers (and tests) control the clock. Each series' keys share a hash tag, so multi-key
//! reads work on Redis Cluster too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use udl_core::{Error, Result};

use crate::error::classify;
use crate::store::RedisStore;

/// Bucketed counters over Redis.
#[derive(Clone)]
pub struct Counters {
    store: RedisStore,
    bucket: Duration,
    retention: Duration,
}

impl Counters {
    /// Buckets of `bucket` length, each kept for `retention`.
    pub fn new(store: RedisStore, bucket: Duration, retention: Duration) -> Result<Self> {
        if bucket.as_secs() == 0 || retention < bucket {
            return Err(Error::invalid(
                "bucket must be at least a second and retention at least one bucket",
            ));
        }
        Ok(Counters {
            store,
            bucket,
            retention,
        })
    }

    fn bucket_of(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(self.bucket.as_secs() as i64)
    }

    fn key(&self, kind: &str, series: &str, bucket: i64) -> String {
        self.store.key(&format!("{kind}:{{{series}}}:{bucket}"))
    }

    /// Keys of every bucket overlapping the `window` that ends at `now`.
    fn window_keys(
        &self,
        kind: &str,
        series: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let last = self.bucket_of(now);
        let count = window.as_secs().div_ceil(self.bucket.as_secs()).max(1) as i64;
        (last - count + 1..=last)
            .map(|b| self.key(kind, series, b))
            .collect()
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
        op: &'static str,
    ) -> Result<T> {
        let mut conn = self.store.connection();
        pipe.query_async(&mut conn)
            .await
            .map_err(|e| classify(&e, op))
    }

    /// Adds `by` to `series` at time `at`.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "counters.incr")
    )]
    pub async fn incr(&self, series: &str, by: i64, at: DateTime<Utc>) -> Result<()> {
        self.store
            .meter()
            .measure("counters.incr", async move {
                let key = self.key("ctr", series, self.bucket_of(at));
                let mut pipe = redis::pipe();
                pipe.cmd("INCRBY").arg(&key).arg(by).ignore();
                pipe.cmd("EXPIRE")
                    .arg(&key)
                    .arg(self.retention.as_secs())
                    .ignore();
                self.run::<()>(&pipe, "counter incr").await
            })
            .await
    }

    /// Sum of `series` over the `window` ending at `now` ("last 5 minutes").
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "counters.sum")
    )]
    pub async fn sum(&self, series: &str, window: Duration, now: DateTime<Utc>) -> Result<i64> {
        self.store
            .meter()
            .measure("counters.sum", async move {
                let keys = self.window_keys("ctr", series, window, now);
                let mut pipe = redis::pipe();
                pipe.cmd("MGET").arg(&keys);
                let (values,): (Vec<Option<i64>>,) = self.run(&pipe, "counter sum").await?;
                Ok(values.into_iter().flatten().sum())
            })
            .await
    }

    /// Records `member` (e.g. a hashed user id) as seen in `series` at `at`.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "counters.add_unique")
    )]
    pub async fn add_unique(&self, series: &str, member: &str, at: DateTime<Utc>) -> Result<()> {
        self.store
            .meter()
            .measure("counters.add_unique", async move {
                let key = self.key("hll", series, self.bucket_of(at));
                let mut pipe = redis::pipe();
                pipe.cmd("PFADD").arg(&key).arg(member).ignore();
                pipe.cmd("EXPIRE")
                    .arg(&key)
                    .arg(self.retention.as_secs())
                    .ignore();
                self.run::<()>(&pipe, "unique add").await
            })
            .await
    }

    /// Approximate distinct members of `series` over the window (HyperLogLog, ~0.8% error).
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "counters.count_unique")
    )]
    pub async fn count_unique(
        &self,
        series: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.store
            .meter()
            .measure("counters.count_unique", async move {
                let keys = self.window_keys("hll", series, window, now);
                let mut pipe = redis::pipe();
                pipe.cmd("PFCOUNT").arg(&keys);
                let (n,): (u64,) = self.run(&pipe, "unique count").await?;
                Ok(n)
            })
            .await
    }

    /// Adds `by` to `member`'s score in `series` at `at`.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "counters.add_score")
    )]
    pub async fn add_score(
        &self,
        series: &str,
        member: &str,
        by: f64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.store
            .meter()
            .measure("counters.add_score", async move {
                let key = self.key("top", series, self.bucket_of(at));
                let mut pipe = redis::pipe();
                pipe.cmd("ZINCRBY").arg(&key).arg(by).arg(member).ignore();
                pipe.cmd("EXPIRE")
                    .arg(&key)
                    .arg(self.retention.as_secs())
                    .ignore();
                self.run::<()>(&pipe, "top add").await
            })
            .await
    }

    /// The `n` members with the highest total score over the window, highest first.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "counters.top")
    )]
    pub async fn top(
        &self,
        series: &str,
        n: usize,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, f64)>> {
        self.store
            .meter()
            .measure("counters.top", async move {
                let keys = self.window_keys("top", series, window, now);
                let mut pipe = redis::pipe();
                pipe.cmd("ZUNION")
                    .arg(keys.len())
                    .arg(&keys)
                    .arg("WITHSCORES");
                let (mut merged,): (Vec<(String, f64)>,) = self.run(&pipe, "top read").await?;
                merged.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                merged.truncate(n);
                Ok(merged)
            })
            .await
    }
}
