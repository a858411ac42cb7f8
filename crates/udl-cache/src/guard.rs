//! Redis as an optional tier. Every cache call to Redis goes through the guard, which bounds it
//! by `l2_timeout` and skips Redis altogether while the guard's circuit breaker is open, so a
//! slow or absent Redis costs a read almost nothing: it goes to the source store.
//!
//! Invalidations that could not reach Redis are kept and sent before L2 or L3 is read again,
//! so a record written during the outage is not served stale from Redis once it is back.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_resilience::{BreakerConfig, CircuitBreaker, SystemClock};

/// Most invalidated keys kept during an outage; past it the oldest are dropped (and L2's TTL
/// bounds how long those could be served stale).
const MAX_PENDING: usize = 100_000;

/// Invalidations Redis has not received yet.
#[derive(Default)]
pub(crate) struct Pending {
    /// L2 keys to delete.
    pub deletes: HashSet<String>,
    /// Patterns of L2 keys to delete (every cached record of an entity).
    pub wipes: HashSet<String>,
    /// Entity version keys to move.
    pub versions: HashSet<String>,
    /// Messages for other processes.
    pub messages: HashSet<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.deletes.is_empty()
            && self.wipes.is_empty()
            && self.versions.is_empty()
            && self.messages.is_empty()
    }

    fn merge(&mut self, other: Pending) {
        self.deletes.extend(other.deletes);
        self.wipes.extend(other.wipes);
        self.versions.extend(other.versions);
        self.messages.extend(other.messages);
        if self.deletes.len() > MAX_PENDING {
            tracing::error!(
                kept = MAX_PENDING,
                "too many invalidations waiting for Redis; the rest expire with the L2 TTL"
            );
            let excess = self.deletes.len() - MAX_PENDING;
            let dropped: Vec<String> = self.deletes.iter().take(excess).cloned().collect();
            for key in dropped {
                self.deletes.remove(&key);
            }
        }
    }
}

/// The breaker, timeout and backlog of one cache's Redis calls.
pub(crate) struct RedisGuard {
    breaker: CircuitBreaker,
    timeout: Duration,
    pending: Mutex<Pending>,
}

impl RedisGuard {
    pub fn new(breaker: BreakerConfig, timeout: Duration) -> Self {
        RedisGuard {
            breaker: CircuitBreaker::new(StoreKind::REDIS, breaker, Arc::new(SystemClock)),
            timeout,
            pending: Mutex::new(Pending::default()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the guard lets Redis calls through (closed or probing).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// `call`'s answer; `None` when Redis is skipped, failed or was too slow.
    pub async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Option<T> {
        let admission = self.breaker.admit().ok()?;
        let outcome = tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(
                    Error::new(ErrorKind::Timeout, "Redis did not answer in time")
                        .with_store(StoreKind::REDIS)
                        .with_operation(operation),
                )
            });
        self.breaker.record(
            admission,
            outcome.as_ref().is_err_and(Error::is_store_failure),
        );
        match outcome {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::warn!(error = %e, "cache tier in Redis skipped");
                None
            }
        }
    }

    /// One Redis command through [`RedisGuard::call`], its error classified as `operation`.
    pub async fn command<T>(
        &self,
        operation: &'static str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        self.call(operation, async {
            command
                .await
                .map_err(|e| udl_redis::classify(&e, operation))
        })
        .await
    }

    /// Keeps invalidations Redis did not receive.
    pub fn defer(&self, undelivered: Pending) {
        self.pending().merge(undelivered);
    }

    /// The backlog, emptied; `None` when there is none.
    pub fn take_pending(&self) -> Option<Pending> {
        let mut pending = self.pending();
        (!pending.is_empty()).then(|| std::mem::take(&mut *pending))
    }
}
