//! udl's Prometheus metrics. Every label is a name udl itself chose (store, operation, outcome
//! kind, breaker state, pool direction), never a value of a record, so no PHI or patient id
//! can reach a metric. One [`Metrics`] per process is shared by every store's layers and
//! rendered by `udl serve` at `/metrics`.

pub use udl_core::PoolFigures;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use udl_core::{Error, ErrorKind, Result, StoreKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    store: &'static str,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    store: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    store: &'static str,
    state: &'static str,
}

type HistogramFamily = Family<OperationLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to ~13 s: a cache hit at the low end, a timed-out call at the high end.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The metrics of one process.
pub struct Metrics {
    registry: Registry,
    operations: HistogramFamily,
    retries: Family<CallLabels, Counter>,
    breaker_state: Family<StoreLabels, Gauge>,
    breaker_transitions: Family<StateLabels, Counter>,
    pool_connections: Family<StateLabels, Gauge>,
    pool_resizes: Family<StateLabels, Counter>,
    spool_depth: Family<StoreLabels, Gauge>,
    spool_replayed: Family<StoreLabels, Counter>,
    store_up: Family<StoreLabels, Gauge>,
    audit_unshipped: Gauge,
    audit_ship_lag: Histogram,
    cdc_events: Counter,
    cdc_fields: Family<ActionLabels, Counter>,
    cdc_lag_bytes: Gauge,
    cdc_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    cdc_state: Family<RelayStateLabels, Gauge>,
    projection_lag_seconds: Family<ProjectionLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    job_runs: Family<JobLabels, Counter>,
    job_duration: Family<JobNameLabels, Histogram, fn() -> Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobNameLabels {
    job: &'static str,
}

/// Job runs last from milliseconds (nothing to do) to hours (a first purge of years).
fn job_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 4.0, 10))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectionLabels {
    projection: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RelayStateLabels {
    state: &'static str,
}

/// The states a change relay reports through `udl_cdc_state`.
pub const RELAY_STATES: [&str; 4] = ["standby", "running", "halted", "stopped"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a circuit breaker stands, as the `udl_breaker_state` gauge shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerGauge {
    /// 0: calls go through.
    Closed,
    /// 1: probes go through.
    HalfOpen,
    /// 2: calls fail at once.
    Open,
}

impl BreakerGauge {
    fn name(self) -> &'static str {
        match self {
            BreakerGauge::Closed => "closed",
            BreakerGauge::HalfOpen => "half_open",
            BreakerGauge::Open => "open",
        }
    }
}

impl Metrics {
    /// Empty metrics, every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("udl");
        let operations = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register(
            "operation_duration_seconds",
            "Store operations by store, operation and outcome (ok or the error kind); _count is the operation count",
            operations.clone(),
        );
        let retries = Family::default();
        registry.register(
            "retries",
            "Attempts repeated after a temporary error",
            retries.clone(),
        );
        let breaker_state = Family::default();
        registry.register(
            "breaker_state",
            "Circuit breaker per store: 0 closed, 1 half-open, 2 open",
            breaker_state.clone(),
        );
        let breaker_transitions = Family::default();
        registry.register(
            "breaker_transitions",
            "Circuit breaker state changes, by the state entered",
            breaker_transitions.clone(),
        );
        let pool_connections = Family::default();
        registry.register(
            "pool_connections",
            "Connections per store pool: open, idle, and the configured min and max",
            pool_connections.clone(),
        );
        let pool_resizes = Family::default();
        registry.register(
            "pool_resizes",
            "Pool size changes, by direction (grew or shrank)",
            pool_resizes.clone(),
        );
        let spool_depth = Family::default();
        registry.register(
            "spool_depth",
            "Writes waiting in the durable spool for their store to return",
            spool_depth.clone(),
        );
        let spool_replayed = Family::default();
        registry.register(
            "spool_replayed",
            "Spooled writes replayed to their store",
            spool_replayed.clone(),
        );
        let store_up = Family::default();
        registry.register(
            "store_up",
            "1 when the store's last health round trip answered, 0 when it did not",
            store_up.clone(),
        );
        let audit_unshipped = Gauge::default();
        registry.register(
            "audit_unshipped",
            "PHI access entries durable in this process's local audit journal and not yet in PostgreSQL",
            audit_unshipped.clone(),
        );
        let audit_ship_lag = latency_histogram();
        registry.register(
            "audit_ship_lag_seconds",
            "Time from an audit entry's sync in the local journal to its commit in PostgreSQL",
            audit_ship_lag.clone(),
        );
        let cdc_events = Counter::default();
        registry.register(
            "cdc_events",
            "Sanitized change events written to every sink",
            cdc_events.clone(),
        );
        let cdc_fields = Family::default();
        registry.register(
            "cdc_fields",
            "Fields of change events redacted, by action (stripped or tokenized)",
            cdc_fields.clone(),
        );
        let cdc_lag_bytes = Gauge::default();
        registry.register(
            "cdc_lag_bytes",
            "WAL the change relay has received but not yet made durable in its sinks",
            cdc_lag_bytes.clone(),
        );
        let cdc_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "cdc_lag_seconds",
            "Age of the oldest commit the change relay holds that is not yet durable in its sinks",
            cdc_lag_seconds.clone(),
        );
        let cdc_state = Family::default();
        registry.register(
            "cdc_state",
            "1 for the change relay's current state (standby, running, halted, stopped)",
            cdc_state.clone(),
        );
        let projection_lag_seconds = Family::default();
        registry.register(
            "projection_lag_seconds",
            "Age of the commit behind the last change a projection applied, when it applied it",
            projection_lag_seconds.clone(),
        );
        let job_runs = Family::default();
        registry.register(
            "job_runs",
            "Job runs by job and outcome (succeeded, failed, skipped)",
            job_runs.clone(),
        );
        let job_duration: Family<JobNameLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(job_histogram);
        registry.register(
            "job_duration_seconds",
            "How long each job's runs took",
            job_duration.clone(),
        );
        Metrics {
            registry,
            job_runs,
            job_duration,
            projection_lag_seconds,
            cdc_events,
            cdc_fields,
            cdc_lag_bytes,
            cdc_lag_seconds,
            cdc_state,
            store_up,
            audit_unshipped,
            audit_ship_lag,
            operations,
            retries,
            breaker_state,
            breaker_transitions,
            pool_connections,
            pool_resizes,
            spool_depth,
            spool_replayed,
        }
    }

    /// One finished operation: `outcome` is `None` for success or the error's kind.
    pub fn observe_operation(
        &self,
        store: StoreKind,
        operation: &'static str,
        outcome: Option<ErrorKind>,
        took: Duration,
    ) {
        self.operation_timing(store, operation, outcome)
            .observe(took);
    }

    /// The latency histogram of one store, operation and outcome, to keep and observe into
    /// without a lookup per call (hot paths keep the handles of their successes).
    pub fn operation_timing(
        &self,
        store: StoreKind,
        operation: &'static str,
        outcome: Option<ErrorKind>,
    ) -> OperationTiming {
        let labels = OperationLabels {
            store: store.name(),
            operation,
            outcome: outcome.map_or("ok", ErrorKind::name),
        };
        OperationTiming(self.operations.get_or_create(&labels).clone())
    }

    /// One attempt repeated after a temporary error.
    pub fn count_retry(&self, store: StoreKind, operation: &'static str) {
        self.retries
            .get_or_create(&CallLabels {
                store: store.name(),
                operation,
            })
            .inc();
    }

    /// A breaker entered `state`.
    pub fn breaker_changed(&self, store: StoreKind, state: BreakerGauge) {
        let store = store.name();
        self.breaker_state
            .get_or_create(&StoreLabels { store })
            .set(state as i64);
        self.breaker_transitions
            .get_or_create(&StateLabels {
                store,
                state: state.name(),
            })
            .inc();
    }

    /// A pool's current figures.
    pub fn set_pool(&self, store: StoreKind, figures: PoolFigures) {
        let store = store.name();
        for (state, value) in [
            ("open", figures.open),
            ("idle", figures.idle),
            ("min", figures.min),
            ("max", figures.max),
        ] {
            self.pool_connections
                .get_or_create(&StateLabels { store, state })
                .set(i64::from(value));
        }
    }

    /// A pool grew (`grew = true`) or shrank.
    pub fn count_pool_resize(&self, store: StoreKind, grew: bool) {
        self.pool_resizes
            .get_or_create(&StateLabels {
                store: store.name(),
                state: if grew { "grew" } else { "shrank" },
            })
            .inc();
    }

    /// Writes now waiting in `store`'s spool.
    pub fn set_spool_depth(&self, store: StoreKind, depth: u64) {
        self.spool_depth
            .get_or_create(&StoreLabels {
                store: store.name(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// `count` spooled writes reached `store`.
    pub fn count_replayed(&self, store: StoreKind, count: u64) {
        self.spool_replayed
            .get_or_create(&StoreLabels {
                store: store.name(),
            })
            .inc_by(count);
    }

    /// Audit entries now waiting in the local journal to reach PostgreSQL.
    pub fn set_audit_unshipped(&self, waiting: usize) {
        self.audit_unshipped
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// One audit entry reached PostgreSQL `lag` after its sync in the local journal.
    pub fn observe_audit_ship_lag(&self, lag: Duration) {
        self.audit_ship_lag.observe(lag.as_secs_f64());
    }

    /// The outcome of `store`'s last health round trip.
    pub fn set_store_up(&self, store: StoreKind, up: bool) {
        self.store_up
            .get_or_create(&StoreLabels {
                store: store.name(),
            })
            .set(i64::from(up));
    }

    /// `count` change events reached every sink, with `stripped` and `tokenized` fields.
    pub fn count_cdc_events(&self, count: u64, stripped: u64, tokenized: u64) {
        self.cdc_events.inc_by(count);
        for (action, n) in [("stripped", stripped), ("tokenized", tokenized)] {
            self.cdc_fields
                .get_or_create(&ActionLabels { action })
                .inc_by(n);
        }
    }

    /// How far the change relay is behind: WAL bytes and seconds not yet durable.
    pub fn set_cdc_lag(&self, bytes: u64, seconds: f64) {
        self.cdc_lag_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.cdc_lag_seconds.set(seconds);
    }

    /// Projection `projection` applied a change committed `seconds` ago.
    pub fn set_projection_lag(&self, projection: &'static str, seconds: f64) {
        self.projection_lag_seconds
            .get_or_create(&ProjectionLabels { projection })
            .set(seconds);
    }

    /// Job `job` ran (outcome `succeeded`, `failed` or `skipped`) for `seconds`.
    pub fn observe_job_run(&self, job: &'static str, outcome: &'static str, seconds: f64) {
        self.job_runs
            .get_or_create(&JobLabels { job, outcome })
            .inc();
        self.job_duration
            .get_or_create(&JobNameLabels { job })
            .observe(seconds);
    }

    /// The change relay entered `state` (one of [`RELAY_STATES`]).
    pub fn set_cdc_state(&self, state: &'static str) {
        for s in RELAY_STATES {
            self.cdc_state
                .get_or_create(&RelayStateLabels { state: s })
                .set(i64::from(s == state));
        }
    }

    /// Everything, in the Prometheus text format (OpenMetrics flavour, ending in `# EOF`).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Measures the operations a store's own APIs run outside the resilience layer (Redis
/// structures, ScyllaDB's typed APIs); measures nothing until given [`Metrics`].
#[derive(Clone)]
pub struct StoreMeter {
    store: StoreKind,
    metrics: Option<Arc<Metrics>>,
}

impl StoreMeter {
    /// A meter for `store` that reports nowhere yet.
    pub fn new(store: StoreKind) -> Self {
        StoreMeter {
            store,
            metrics: None,
        }
    }

    /// The same meter reporting to `metrics`.
    pub fn reporting_to(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs `call` as one observation of `operation` (outcome `ok` or the error's kind).
    pub async fn measure<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(metrics) = &self.metrics else {
            return call.await;
        };
        let started = Instant::now();
        let outcome = call.await;
        let failed = outcome.as_ref().err().map(Error::kind);
        metrics.observe_operation(self.store, operation, failed, started.elapsed());
        outcome
    }
}

/// A handle on one series of `udl_operation_duration_seconds`.
#[derive(Clone, Debug)]
pub struct OperationTiming(Histogram);

impl OperationTiming {
    /// Counts one operation that took `took`.
    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_family_with_store_and_operation_labels_only() {
        let metrics = Metrics::new();
        metrics.observe_operation(
            StoreKind::POSTGRES,
            "get",
            Some(ErrorKind::Timeout),
            Duration::from_millis(3),
        );
        metrics.observe_operation(StoreKind::POSTGRES, "get", None, Duration::from_micros(200));
        metrics.count_retry(StoreKind::MONGO, "list");
        metrics.breaker_changed(StoreKind::REDIS, BreakerGauge::Open);
        metrics.set_pool(
            StoreKind::POSTGRES,
            PoolFigures {
                open: 3,
                idle: 1,
                min: 1,
                max: 10,
            },
        );
        metrics.count_pool_resize(StoreKind::POSTGRES, true);
        metrics.set_spool_depth(StoreKind::SCYLLA, 7);
        metrics.count_replayed(StoreKind::SCYLLA, 2);
        metrics.set_store_up(StoreKind::MONGO, false);
        let text = metrics.render();
        for line in [
            r#"udl_operation_duration_seconds_count{store="postgres",operation="get",outcome="timeout"} 1"#,
            r#"udl_operation_duration_seconds_count{store="postgres",operation="get",outcome="ok"} 1"#,
            r#"udl_retries_total{store="mongo",operation="list"} 1"#,
            r#"udl_breaker_state{store="redis"} 2"#,
            r#"udl_breaker_transitions_total{store="redis",state="open"} 1"#,
            r#"udl_pool_connections{store="postgres",state="open"} 3"#,
            r#"udl_pool_connections{store="postgres",state="max"} 10"#,
            r#"udl_pool_resizes_total{store="postgres",state="grew"} 1"#,
            r#"udl_spool_depth{store="scylla"} 7"#,
            r#"udl_spool_replayed_total{store="scylla"} 2"#,
            r#"udl_store_up{store="mongo"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
