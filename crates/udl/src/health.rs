//! Health of every configured store at once: each is given a real round trip (PostgreSQL
//! `SELECT 1`, MongoDB `ping`, Redis `PING` with a unique token, CQL: a look-up of the
//! configured keyspace, which must exist) within a timeout. PostgreSQL is the source of truth, so
//! without it udl is down; without any other store it is degraded.
//!
//! [`HealthMonitor`] keeps the connections it made between checks (a store that could not be
//! reached is connected again at the next check), so a daemon can check every few seconds;
//! [`check`] is the one-shot form `udl health` uses.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;
use udl_config::UdlConfig;
use udl_core::{Backend, Error, ErrorKind, StoreKind};
use udl_metrics::{Metrics, PoolFigures};
use udl_resilience::BreakerState;

use crate::backends::{registrations, Registration};

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
    /// What to do about it, when udl's own configuration or schema is the cause (a missing
    /// keyspace, say): printed by `udl health`, never served over HTTP.
    pub remedy: Option<String>,
    /// What the store said about itself (MongoDB: version, topology, detected capabilities):
    /// printed by `udl health`, never served over HTTP.
    pub detail: Option<String>,
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
        let overall = if down(StoreKind::POSTGRES) {
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
            let detail = s
                .remedy
                .clone()
                .or_else(|| s.detail.clone())
                .or_else(|| {
                    s.pool.map(|p| {
                        format!(
                            "pool {} open, {} in use (min {}, max {})",
                            p.open,
                            p.open.saturating_sub(p.idle),
                            p.min,
                            p.max
                        )
                    })
                })
                .unwrap_or_default();
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
type Kept = Mutex<Option<Arc<dyn Backend>>>;

/// Health checks over connections kept between checks.
pub struct HealthMonitor {
    config: UdlConfig,
    metrics: Option<Arc<Metrics>>,
    /// What the connections made for checks report to: their own, so a daemon's metrics
    /// describe the connections its data layer serves with.
    probe_metrics: Arc<Metrics>,
    /// Every store this build can connect, with its connection once made.
    kept: Vec<(Registration, Kept)>,
}

/// Connects `registration`'s store (or reuses the kept connection) and probes it, all within
/// `timeout`; `None` when the store is not configured.
async fn probe(
    config: &UdlConfig,
    metrics: &Arc<Metrics>,
    registration: &Registration,
    kept: &Kept,
    timeout: Duration,
) -> Option<StoreHealth> {
    registration.configured(config)?;
    let store = registration.kind();
    let connected_and_asked = async {
        let connected = {
            let mut kept = kept.lock().await;
            match &*kept {
                Some(connected) => Arc::clone(connected),
                None => {
                    let connected = (registration.connect)(config, Arc::clone(metrics)).await?;
                    *kept = Some(Arc::clone(&connected));
                    connected
                }
            }
        };
        connected.probe(timeout).await
    };
    let outcome = tokio::time::timeout(timeout, connected_and_asked)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Timeout, "no answer in time")
                .with_store(store)
                .with_operation("health"))
        });
    Some(match outcome {
        Ok(probe) => StoreHealth {
            store,
            latency: Some(probe.latency),
            error: None,
            remedy: None,
            detail: probe.detail,
            pool: probe.pool,
            breaker: None,
        },
        Err(e) => {
            tracing::warn!(store = %store, error = %e, "health check failed");
            StoreHealth {
                store,
                latency: None,
                error: Some(e.kind()),
                // udl's own messages about its configuration name keys and schema objects,
                // never values or secrets.
                remedy: (e.kind() == ErrorKind::Config).then(|| e.message().to_owned()),
                detail: None,
                pool: None,
                breaker: None,
            }
        }
    })
}

impl HealthMonitor {
    /// A monitor of every store in `config`; nothing is connected until the first check.
    pub fn new(config: UdlConfig) -> Self {
        HealthMonitor {
            config,
            metrics: None,
            probe_metrics: Arc::new(Metrics::new()),
            kept: registrations()
                .into_iter()
                .map(|registration| (registration, Mutex::new(None)))
                .collect(),
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
        for backend in data.backends() {
            if let Some((_, kept)) = self.kept.iter().find(|(r, _)| r.kind() == backend.kind()) {
                if let Some(own) = kept.lock().await.replace(Arc::clone(backend)) {
                    own.close().await;
                }
            }
        }
    }

    /// Closes the connections kept so far.
    pub async fn close(&self) {
        for (_, kept) in &self.kept {
            if let Some(own) = kept.lock().await.take() {
                own.close().await;
            }
        }
    }

    /// Checks every configured store at once, each within `timeout`.
    pub async fn check(&self, timeout: Duration) -> HealthReport {
        let probes = self.kept.iter().map(|(registration, kept)| {
            probe(
                &self.config,
                &self.probe_metrics,
                registration,
                kept,
                timeout,
            )
        });
        let report = HealthReport::of(
            futures_util::future::join_all(probes)
                .await
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
    let monitor = HealthMonitor::new(config.clone());
    let report = monitor.check(timeout).await;
    monitor.close().await;
    report
}
