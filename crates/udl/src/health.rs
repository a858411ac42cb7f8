//! Health of every configured store at once: each is given a real round trip (PostgreSQL
//! `SELECT 1`, MongoDB `ping`, Redis `PING` with a unique token, CQL
//! `SELECT now() FROM system.local`) within a timeout. PostgreSQL is the source of truth, so
//! without it udl is down; without any other store it is degraded.
//!
//! [`HealthMonitor`] keeps the connections it made between checks (a store that could not be
//! reached is connected again at the next check), so a daemon can check every few seconds;
//! [`check`] is the one-shot form `udl health` uses.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;
use udl_config::UdlConfig;
use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_metrics::{Metrics, PoolFigures};
use udl_resilience::BreakerState;

/// The verdict over all stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overall {
    /// Every configured store answered.
    Ready,
    /// A store other than PostgreSQL did not answer.
    Degraded,
    /// PostgreSQL did not answer.
    Down,
}

impl Overall {
    /// `ready`, `degraded` or `down`.
    pub fn name(self) -> &'static str {
        match self {
            Overall::Ready => "ready",
            Overall::Degraded => "degraded",
            Overall::Down => "down",
        }
    }
}

/// One store's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreHealth {
    /// Which store.
    pub store: StoreKind,
    /// Round-trip time, when it answered.
    pub latency: Option<Duration>,
    /// Why it did not answer (the error's kind only: messages stay in the logs).
    pub error: Option<ErrorKind>,
    /// Pool figures, where the store's driver reports them (PostgreSQL).
    pub pool: Option<PoolFigures>,
    /// The store's circuit breaker, when the report was joined with a data layer's.
    pub breaker: Option<BreakerState>,
}

impl StoreHealth {
    fn up(&self) -> bool {
        self.latency.is_some()
    }
}

/// Every configured store's answer and the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The verdict.
    pub overall: Overall,
    /// One line per configured store.
    pub stores: Vec<StoreHealth>,
}

impl HealthReport {
    fn of(stores: Vec<StoreHealth>) -> Self {
        let down = |kind| stores.iter().any(|s| s.store == kind && !s.up());
        let overall = if down(StoreKind::Postgres) {
            Overall::Down
        } else if stores.iter().any(|s| !s.up()) {
            Overall::Degraded
        } else {
            Overall::Ready
        };
        HealthReport { overall, stores }
    }

    /// The same report with the breaker state of each store `data` puts behind a layer.
    pub fn with_breakers(mut self, data: &crate::DataLayer) -> Self {
        for (kind, state) in data.breaker_states() {
            if let Some(store) = self.stores.iter_mut().find(|s| s.store == kind) {
                store.breaker = Some(state);
            }
        }
        self
    }

    /// The report as JSON: `{"status": "ready", "stores": {"postgres": {...}, ...}}`.
    pub fn to_json(&self) -> String {
        let stores: serde_json::Map<String, serde_json::Value> = self
            .stores
            .iter()
            .map(|s| {
                let mut detail = json!({
                    "status": if s.up() { "up" } else { "down" },
                    "latency_ms": s.latency.map(|l| l.as_secs_f64() * 1e3),
                    "error": s.error.map(ErrorKind::name),
                });
                if let Some(breaker) = s.breaker {
                    detail["breaker"] = json!(breaker.name());
                }
                if let Some(pool) = s.pool {
                    detail["pool"] = json!({
                        "open": pool.open,
                        "idle": pool.idle,
                        "in_use": pool.open.saturating_sub(pool.idle),
                        "min": pool.min,
                        "max": pool.max,
                    });
                }
                (s.store.name().to_owned(), detail)
            })
            .collect();
        json!({ "status": self.overall.name(), "stores": stores }).to_string()
    }
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<10} {:<6} {:>10}  detail",
            "store", "status", "latency"
        )?;
        for s in &self.stores {
            let (status, latency) = match (s.latency, s.error) {
                (Some(l), _) => ("up", format!("{:.1} ms", l.as_secs_f64() * 1e3)),
                (None, Some(kind)) => ("DOWN", kind.name().to_owned()),
                (None, None) => ("DOWN", String::new()),
            };
            let detail = s.pool.map_or(String::new(), |p| {
                format!(
                    "pool {} open, {} in use (min {}, max {})",
                    p.open,
                    p.open.saturating_sub(p.idle),
                    p.min,
                    p.max
                )
            });
            writeln!(
                f,
                "{:<10} {status:<6} {latency:>10}  {detail}",
                s.store.name()
            )?;
        }
        write!(f, "overall: {}", self.overall.name())
    }
}

/// A store's connection, kept between checks once made.
type Kept<S> = Mutex<Option<S>>;

/// Health checks over connections kept between checks.
pub struct HealthMonitor {
    config: UdlConfig,
    metrics: Option<Arc<Metrics>>,
    #[cfg(feature = "postgres")]
    postgres: Kept<udl_postgres::PgStore>,
    #[cfg(feature = "mongo")]
    mongo: Kept<udl_mongo::MongoStore>,
    #[cfg(feature = "redis")]
    redis: Kept<udl_redis::RedisStore>,
    #[cfg(feature = "scylla")]
    scylla: Kept<udl_scylla::ScyllaStore>,
}

/// Connects (or reuses the kept connection) and asks `health`, all within `timeout`.
async fn probe<S, C, H>(
    store: StoreKind,
    timeout: Duration,
    kept: &Kept<S>,
    connect: impl FnOnce() -> C,
    health: impl FnOnce(S) -> H,
) -> StoreHealth
where
    S: Clone,
    C: Future<Output = Result<S>>,
    H: Future<Output = Result<(Duration, Option<PoolFigures>)>>,
{
    let connected_and_asked = async {
        let connected = {
            let mut kept = kept.lock().await;
            match &*kept {
                Some(connected) => connected.clone(),
                None => {
                    let connected = connect().await?;
                    *kept = Some(connected.clone());
                    connected
                }
            }
        };
        health(connected).await
    };
    let outcome = tokio::time::timeout(timeout, connected_and_asked)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Timeout, "no answer in time")
                .with_store(store)
                .with_operation("health"))
        });
    match outcome {
        Ok((latency, pool)) => StoreHealth {
            store,
            latency: Some(latency),
            error: None,
            pool,
            breaker: None,
        },
        Err(e) => {
            tracing::warn!(store = %store, error = %e, "health check failed");
            StoreHealth {
                store,
                latency: None,
                error: Some(e.kind()),
                pool: None,
                breaker: None,
            }
        }
    }
}

impl HealthMonitor {
    /// A monitor of every store in `config`; nothing is connected until the first check.
    pub fn new(config: UdlConfig) -> Self {
        HealthMonitor {
            config,
            metrics: None,
            #[cfg(feature = "postgres")]
            postgres: Mutex::new(None),
            #[cfg(feature = "mongo")]
            mongo: Mutex::new(None),
            #[cfg(feature = "redis")]
            redis: Mutex::new(None),
            #[cfg(feature = "scylla")]
            scylla: Mutex::new(None),
        }
    }

    /// Also sets `udl_store_up` and the pool gauges in `metrics` at every check.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Checks through `data`'s connections from now on, closing the ones made for checks: a
    /// process then keeps one pool per store, and the pool gauges describe the pool its data
    /// layer uses rather than the monitor's own.
    pub async fn adopt(&self, data: &crate::DataLayer) {
        #[cfg(feature = "postgres")]
        if let Ok(pg) = data.postgres() {
            if let Some(own) = self.postgres.lock().await.replace(pg.clone()) {
                own.pool().close().await;
            }
        }
        #[cfg(feature = "mongo")]
        if let Ok(mongo) = data.mongo() {
            *self.mongo.lock().await = Some(mongo.clone());
        }
        #[cfg(feature = "redis")]
        if let Ok(redis) = data.redis() {
            *self.redis.lock().await = Some(redis.clone());
        }
        #[cfg(feature = "scylla")]
        if let Ok(scylla) = data.scylla() {
            *self.scylla.lock().await = Some(scylla.clone());
        }
    }

    /// Closes the connections kept so far (PostgreSQL's pool is closed politely).
    pub async fn close(&self) {
        #[cfg(feature = "postgres")]
        if let Some(pg) = self.postgres.lock().await.take() {
            pg.pool().close().await;
        }
        #[cfg(feature = "mongo")]
        self.mongo.lock().await.take();
        #[cfg(feature = "redis")]
        self.redis.lock().await.take();
        #[cfg(feature = "scylla")]
        self.scylla.lock().await.take();
    }

    /// Checks every configured store at once, each within `timeout`.
    pub async fn check(&self, timeout: Duration) -> HealthReport {
        let config = &self.config;
        #[cfg(feature = "postgres")]
        let postgres = async {
            let c = config.postgres.as_ref()?;
            Some(
                probe(
                    StoreKind::Postgres,
                    timeout,
                    &self.postgres,
                    || udl_postgres::PgStore::connect(c),
                    |pg| async move {
                        let h = pg.health(timeout).await?;
                        let figures = PoolFigures {
                            open: h.pool_size,
                            idle: u32::try_from(h.idle).unwrap_or(u32::MAX),
                            min: c.pool.min,
                            max: c.pool.max,
                        };
                        Ok((h.latency, Some(figures)))
                    },
                )
                .await,
            )
        };
        #[cfg(not(feature = "postgres"))]
        let postgres = async { None };
        #[cfg(feature = "mongo")]
        let mongo = async {
            let c = config.mongo.as_ref()?;
            Some(
                probe(
                    StoreKind::Mongo,
                    timeout,
                    &self.mongo,
                    || udl_mongo::MongoStore::connect(c),
                    |m| async move { Ok((m.health(timeout).await?, None)) },
                )
                .await,
            )
        };
        #[cfg(not(feature = "mongo"))]
        let mongo = async { None };
        #[cfg(feature = "redis")]
        let redis = async {
            let c = config.redis.as_ref()?;
            Some(
                probe(
                    StoreKind::Redis,
                    timeout,
                    &self.redis,
                    || udl_redis::RedisStore::connect(c),
                    |r| async move { Ok((r.health(timeout).await?, None)) },
                )
                .await,
            )
        };
        #[cfg(not(feature = "redis"))]
        let redis = async { None };
        #[cfg(feature = "scylla")]
        let scylla = async {
            let c = config.scylla.as_ref()?;
            Some(
                probe(
                    StoreKind::Scylla,
                    timeout,
                    &self.scylla,
                    || udl_scylla::ScyllaStore::connect(c),
                    |s| async move { Ok((s.health(timeout).await?, None)) },
                )
                .await,
            )
        };
        #[cfg(not(feature = "scylla"))]
        let scylla = async { None };

        let (postgres, mongo, redis, scylla) = tokio::join!(postgres, mongo, redis, scylla);
        let report = HealthReport::of(
            [postgres, mongo, redis, scylla]
                .into_iter()
                .flatten()
                .collect(),
        );
        if let Some(metrics) = &self.metrics {
            for s in &report.stores {
                metrics.set_store_up(s.store, s.up());
                if let Some(pool) = s.pool {
                    metrics.set_pool(s.store, pool);
                }
            }
        }
        report
    }
}

/// Checks every store configured in `config` once, on fresh connections, each within `timeout`.
pub async fn check(config: &UdlConfig, timeout: Duration) -> HealthReport {
    HealthMonitor::new(config.clone()).check(timeout).await
}
