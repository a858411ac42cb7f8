//! The resilience layer: wraps any record store with a concurrency limit (bulkhead), the
//! store's circuit breaker, a timeout per call, and retries of reads that failed with a
//! temporary error, within the retry budget. Writes are not retried unless the caller gave
//! an idempotency key (`AccessContext::with_idempotency_key`): a write that timed out may have
//! been applied, and doing it again could apply it twice.
//!
//! Every call is one `udl.store` tracing span (store, operation, entity name, outcome) and one
//! observation of `udl_operation_duration_seconds`; neither ever carries a record's values.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use udl_core::op;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tracing::Instrument as _;
use udl_core::{
    AccessContext, Capabilities, EntityMeta, Error, ErrorKind, Filter, Query, QueryLimits, Record,
    RecordStore, Result, StoreKind, ValidChanges, Value,
};

use udl_metrics::{Metrics, OperationTiming};

use crate::{Backoff, BreakerConfig, CircuitBreaker, Clock, RetryBudget, SystemClock};

/// The policies of one store.
#[derive(Clone, Debug)]
pub struct ResilienceConfig {
    /// Longest one attempt may take.
    pub timeout: Duration,
    /// Calls in flight at once.
    pub max_concurrent: usize,
    /// Longest a call waits for a free slot before `Timeout`.
    pub max_wait: Duration,
    /// Attempts and pauses of reads.
    pub backoff: Backoff,
    /// Share of traffic retries may add, and the floor per window.
    pub retry_ratio: f64,
    /// Retries allowed per window whatever the traffic.
    pub retry_floor: u64,
    /// The breaker.
    pub breaker: BreakerConfig,
    /// Bounds on filter values and ids, checked before a call is sent (so before the breaker).
    pub limits: QueryLimits,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        ResilienceConfig {
            timeout: Duration::from_secs(5),
            max_concurrent: 64,
            max_wait: Duration::from_secs(5),
            backoff: Backoff::default(),
            retry_ratio: 0.2,
            retry_floor: 10,
            breaker: BreakerConfig::default(),
            limits: QueryLimits::default(),
        }
    }
}

impl From<&udl_config::ResilienceSettings> for ResilienceConfig {
    fn from(s: &udl_config::ResilienceSettings) -> Self {
        let defaults = ResilienceConfig::default();
        ResilienceConfig {
            timeout: s.timeout,
            max_concurrent: s.max_concurrent as usize,
            max_wait: s.max_wait,
            backoff: Backoff {
                max_attempts: s.read_attempts,
                ..defaults.backoff
            },
            breaker: BreakerConfig {
                consecutive_failures: s.breaker_failures,
                open_for: s.breaker_open_for,
                ..defaults.breaker
            },
            limits: QueryLimits {
                max_value_bytes: s.max_filter_value_bytes,
                max_values: s.max_filter_values,
            },
            ..defaults
        }
    }
}

/// A record store behind the resilience policies.
pub struct ResilientStore {
    inner: Arc<dyn RecordStore>,
    config: ResilienceConfig,
    slots: Semaphore,
    breaker: CircuitBreaker,
    budget: RetryBudget,
    metrics: Arc<Metrics>,
    /// Successes of each operation, the hot path, observed without a lookup in the family.
    succeeded: Vec<(&'static str, OperationTiming)>,
}

/// Every operation the layer measures.
const OPERATIONS: [&str; 10] = [
    op::GET,
    op::LIST,
    op::COUNT,
    op::EXISTS,
    op::NEAREST,
    op::CREATE,
    op::CREATE_MANY,
    op::UPDATE,
    op::DELETE,
    op::CREATE_WITH_TTL,
];

impl ResilientStore {
    /// Wraps `inner` with `config`, on the system clock, reporting to `metrics`.
    pub fn new(
        inner: Arc<dyn RecordStore>,
        config: ResilienceConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Self::build(inner, config, Arc::new(SystemClock), metrics)
    }

    /// Wraps `inner` with `config`, reading time from `clock` (metrics of its own).
    pub fn with_clock(
        inner: Arc<dyn RecordStore>,
        config: ResilienceConfig,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Self::build(inner, config, clock, Arc::new(Metrics::new()))
    }

    fn build(
        inner: Arc<dyn RecordStore>,
        config: ResilienceConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let store = inner.kind();
        Arc::new(ResilientStore {
            slots: Semaphore::new(config.max_concurrent.max(1)),
            breaker: CircuitBreaker::new(store, config.breaker, Arc::clone(&clock))
                .with_metrics(Arc::clone(&metrics)),
            budget: RetryBudget::new(
                config.retry_ratio,
                config.retry_floor,
                Duration::from_secs(10),
                clock,
            ),
            succeeded: OPERATIONS
                .iter()
                .map(|op| (*op, metrics.operation_timing(store, op, None)))
                .collect(),
            inner,
            config,
            metrics,
        })
    }

    /// The metrics this layer reports to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store's breaker (state and transition counts).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// A bound's verdict on a call, with the store and operation named.
    fn bounded(&self, operation: &'static str, verdict: Result<()>) -> Result<()> {
        verdict.map_err(|e| e.with_store(self.inner.kind()).with_operation(operation))
    }

    fn timed_out(&self, operation: &'static str, message: &'static str) -> Error {
        Error::new(ErrorKind::Timeout, message)
            .with_store(self.inner.kind())
            .with_operation(operation)
    }

    async fn slot(&self, operation: &'static str) -> Result<tokio::sync::SemaphorePermit<'_>> {
        // A free slot is taken at once, without arming the wait's timer.
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        tokio::time::timeout(self.config.max_wait, self.slots.acquire())
            .await
            .map_err(|_| self.timed_out(operation, "too many calls in flight to this store"))?
            .map_err(|_| self.timed_out(operation, "the store is shutting down"))
    }

    /// One attempt, through the breaker and within the timeout.
    async fn attempt<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let admission = self
            .breaker
            .admit()
            .map_err(|e| e.with_operation(operation))?;
        let outcome = match tokio::time::timeout(self.config.timeout, call).await {
            Ok(outcome) => outcome,
            // The request may have been sent and applied; only its answer is missing.
            Err(_) => Err(self
                .timed_out(operation, "the store did not answer in time")
                .with_outcome_unknown()),
        };
        self.breaker.record(
            admission,
            outcome.as_ref().is_err_and(Error::is_store_failure),
        );
        outcome
    }

    /// Runs `call` as one traced and measured operation, waiting for a slot included.
    async fn observed<T>(
        &self,
        operation: &'static str,
        entity: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "udl.store",
            store = self.inner.kind().name(),
            operation,
            entity,
            outcome = tracing::field::Empty,
        );
        let outcome = call.instrument(span.clone()).await;
        let failed = outcome.as_ref().err().map(Error::kind);
        span.record("outcome", failed.map_or("ok", ErrorKind::name));
        let took = started.elapsed();
        match self.succeeded.iter().find(|(op, _)| *op == operation) {
            Some((_, timing)) if failed.is_none() => timing.observe(took),
            _ => self
                .metrics
                .observe_operation(self.inner.kind(), operation, failed, took),
        }
        outcome
    }

    /// A write of `input`: attempted once, or retried like a read (on a copy of `input` per
    /// attempt) when the caller marked it idempotent.
    async fn write<I, T, F, Fut>(
        &self,
        ctx: &AccessContext,
        operation: &'static str,
        entity: &'static EntityMeta,
        input: I,
        call: F,
    ) -> Result<T>
    where
        I: Clone,
        F: Fn(I) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if ctx.idempotency_key().is_some() {
            return self
                .retried(operation, entity.name, || call(input.clone()))
                .await;
        }
        self.observed(operation, entity.name, async {
            let _slot = self.slot(operation).await?;
            self.budget.record_request();
            self.attempt(operation, call(input)).await
        })
        .await
    }

    /// The outcome of a repeated create (`sent`: what it sent, kept when it could repeat): a
    /// `Conflict` after an attempt that may have been applied is success when the stored record
    /// is the one this call sent (its own earlier attempt landed), and stays a `Conflict`
    /// (marked outcome-unknown) otherwise.
    async fn resolved(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        sent: Option<&Record>,
        outcome: Result<()>,
    ) -> Result<()> {
        let Err(e) = outcome else {
            return Ok(());
        };
        if e.kind() != ErrorKind::Conflict || !e.outcome_unknown() {
            return Err(e);
        }
        let Some((sent, id)) = sent.and_then(|r| Some((r, r.get(entity.id_field)?))) else {
            return Err(e);
        };
        match self.fetch(ctx, entity, id).await {
            Ok(Some(stored)) if crate::landed::is_what_was_sent(entity, sent, &stored) => Ok(()),
            _ => Err(e),
        }
    }

    /// A read on this store that the record operations cannot express (the access policy's
    /// look-ups, say), under the same bulkhead, breaker, timeout and retries as a `get`:
    /// `operation` and `subject` name it in spans and metrics.
    pub async fn read<T, F, Fut>(
        &self,
        operation: &'static str,
        subject: &'static str,
        call: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.retried(operation, subject, call).await
    }

    /// A read: attempted again after temporary errors, with backoff, within the budget.
    async fn retried<T, F, Fut>(
        &self,
        operation: &'static str,
        entity: &'static str,
        call: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.observed(operation, entity, async {
            let _slot = self.slot(operation).await?;
            self.budget.record_request();
            let mut attempts = 0;
            let mut maybe_applied = false;
            loop {
                attempts += 1;
                let outcome = self.attempt(operation, call()).await;
                let retry = outcome.as_ref().is_err_and(Error::is_temporary)
                    && self.config.backoff.allows_another(attempts)
                    && self.budget.try_retry();
                if !retry {
                    // A conflict met after an attempt that may have been applied may be a
                    // conflict with that attempt: say so, the caller (or `insert`) resolves it.
                    return outcome.map_err(|e| match e.kind() {
                        ErrorKind::Conflict if maybe_applied => e.with_outcome_unknown(),
                        _ => e,
                    });
                }
                maybe_applied |= outcome.as_ref().is_err_and(Error::outcome_unknown);
                self.metrics.count_retry(self.inner.kind(), operation);
                tokio::time::sleep(self.config.backoff.delay(attempts - 1)).await;
            }
        })
        .await
    }
}

#[async_trait]
impl RecordStore for ResilientStore {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        // Only a repeated create can meet its own earlier attempt, so only then is a copy kept.
        let sent = ctx.idempotency_key().map(|_| record.clone());
        let outcome = self
            .write(ctx, op::CREATE, entity, record, |r| {
                self.inner.insert(ctx, entity, r)
            })
            .await;
        self.resolved(ctx, entity, sent.as_ref(), outcome).await
    }

    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        self.write(ctx, op::CREATE_MANY, entity, records, |r| {
            self.inner.insert_many(ctx, entity, r)
        })
        .await
    }

    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        self.bounded(op::GET, self.config.limits.check_id(id))?;
        self.retried(op::GET, entity.name, || self.inner.fetch(ctx, entity, id))
            .await
    }

    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        self.bounded(op::UPDATE, self.config.limits.check_id(id))?;
        self.write(ctx, op::UPDATE, entity, (), |()| {
            self.inner.update(ctx, entity, id, changes)
        })
        .await
    }

    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        self.bounded(op::DELETE, self.config.limits.check_id(id))?;
        self.write(ctx, op::DELETE, entity, (), |()| {
            self.inner.delete(ctx, entity, id)
        })
        .await
    }

    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        self.bounded(op::LIST, self.config.limits.check_filter(&query.filter))?;
        self.retried(op::LIST, entity.name, || {
            self.inner.list(ctx, entity, query)
        })
        .await
    }

    async fn count(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        self.bounded(op::COUNT, self.config.limits.check_filter(filter))?;
        self.retried(op::COUNT, entity.name, || {
            self.inner.count(ctx, entity, filter)
        })
        .await
    }

    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        self.bounded(op::EXISTS, self.config.limits.check_id(id))?;
        self.retried(op::EXISTS, entity.name, || {
            self.inner.exists(ctx, entity, id)
        })
        .await
    }

    async fn insert_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        let sent = ctx.idempotency_key().map(|_| record.clone());
        let outcome = self
            .write(ctx, op::CREATE_WITH_TTL, entity, record, |r| {
                self.inner.insert_with_ttl(ctx, entity, r, ttl)
            })
            .await;
        self.resolved(ctx, entity, sent.as_ref(), outcome).await
    }

    async fn nearest(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        field: &'static str,
        vector: &[f32],
        k: usize,
        prefilter: &Filter,
    ) -> Result<Vec<(Record, f32)>> {
        self.bounded(op::NEAREST, self.config.limits.check_filter(prefilter))?;
        self.retried(op::NEAREST, entity.name, || {
            self.inner.nearest(ctx, entity, field, vector, k, prefilter)
        })
        .await
    }
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
