//! A circuit breaker per store: closed → open after too many failures in a row or too high a
//! failure rate → half-open after a pause, letting a few probes through → closed when they
//! succeed, open again when one fails. While open, calls fail at once with a temporary
//! `Unavailable` naming the store, instead of waiting on a store that is not answering.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_metrics::{BreakerGauge, Metrics};

use crate::clock::Clock;

/// When the breaker opens and how it recovers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub consecutive_failures: u32,
    /// Share of failed calls in the window that opens it (once `min_calls` were made).
    pub failure_rate: f64,
    /// Calls needed in the window before the rate counts.
    pub min_calls: u32,
    /// Length of the window the rate is measured over (a new one starts at the first failure
    /// after the last one ran out).
    pub window: Duration,
    /// How long the breaker stays open before probing.
    pub open_for: Duration,
    /// Probes let through while half-open; all must succeed to close.
    pub probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            failure_rate: 0.5,
            min_calls: 20,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(10),
            probes: 3,
        }
    }
}

/// Where the breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once.
    Open,
    /// A few probe calls go through.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// How often the breaker changed state, by the state it entered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakerTransitions {
    /// Times it opened.
    pub opened: u64,
    /// Times it began probing.
    pub half_opened: u64,
    /// Times it closed again.
    pub closed: u64,
}

/// Permission for one call; hand it back to [`CircuitBreaker::record`].
#[derive(Debug)]
#[must_use = "record the outcome of the admitted call"]
pub struct Admission {
    probe: bool,
    /// The breaker episode the call was admitted in; a late answer from an earlier one is ignored.
    episode: u64,
}

struct Inner {
    state: BreakerState,
    episode: u64,
    in_a_row: u32,
    window_started: Instant,
    calls: u32,
    failures: u32,
    opened_at: Instant,
    probes_out: u32,
    probes_passed: u32,
}

/// The breaker of one store.
pub struct CircuitBreaker {
    store: StoreKind,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    opened: AtomicU64,
    half_opened: AtomicU64,
    closed: AtomicU64,
    metrics: Option<Arc<Metrics>>,
}

impl CircuitBreaker {
    /// A closed breaker for `store`.
    pub fn new(store: StoreKind, config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        CircuitBreaker {
            store,
            config,
            clock,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                episode: 0,
                in_a_row: 0,
                window_started: now,
                calls: 0,
                failures: 0,
                opened_at: now,
                probes_out: 0,
                probes_passed: 0,
            }),
            opened: AtomicU64::new(0),
            half_opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            metrics: None,
        }
    }

    /// Reports the state and every change to `metrics` (`udl_breaker_state`, `udl_breaker_transitions`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        metrics.breaker_changed(self.store, BreakerGauge::Closed);
        self.metrics = Some(metrics);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state (an open breaker whose pause is over reports half-open).
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        self.probe_if_due(&mut inner);
        inner.state
    }

    /// How often the breaker changed state.
    pub fn transitions(&self) -> BreakerTransitions {
        BreakerTransitions {
            opened: self.opened.load(Ordering::Relaxed),
            half_opened: self.half_opened.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
        }
    }

    /// Lets a call through, or refuses it at once while the breaker is open.
    pub fn admit(&self) -> Result<Admission> {
        let mut inner = self.lock();
        self.probe_if_due(&mut inner);
        match inner.state {
            BreakerState::Closed => Ok(Admission {
                probe: false,
                episode: inner.episode,
            }),
            BreakerState::HalfOpen if inner.probes_out < self.config.probes => {
                inner.probes_out += 1;
                Ok(Admission {
                    probe: true,
                    episode: inner.episode,
                })
            }
            _ => Err(Error::new(
                ErrorKind::Unavailable,
                format!("{} is failing; its circuit breaker is open", self.store),
            )
            .with_store(self.store)
            .temporary(true)),
        }
    }

    /// Records how an admitted call ended: `failed` for errors classified temporary (a store
    /// that did not answer); anything else, refusals included, counts as an answer.
    pub fn record(&self, admission: Admission, failed: bool) {
        let mut inner = self.lock();
        if admission.episode != inner.episode {
            return;
        }
        match (inner.state, admission.probe) {
            (BreakerState::HalfOpen, true) if failed => self.enter(&mut inner, BreakerState::Open),
            (BreakerState::HalfOpen, true) => {
                inner.probes_out -= 1;
                inner.probes_passed += 1;
                if inner.probes_passed >= self.config.probes {
                    self.enter(&mut inner, BreakerState::Closed);
                }
            }
            (BreakerState::Closed, false) => {
                if !failed {
                    // Successes only count: the clock is read on failures, the rare path.
                    inner.calls += 1;
                    inner.in_a_row = 0;
                    return;
                }
                let now = self.clock.now();
                if now.duration_since(inner.window_started) >= self.config.window {
                    // The rate window restarts at the first failure after it ran out.
                    inner.window_started = now;
                    inner.calls = 0;
                    inner.failures = 0;
                }
                inner.calls += 1;
                inner.failures += 1;
                inner.in_a_row += 1;
                let rate_exceeded = inner.calls >= self.config.min_calls
                    && f64::from(inner.failures) / f64::from(inner.calls)
                        >= self.config.failure_rate;
                if inner.in_a_row >= self.config.consecutive_failures || rate_exceeded {
                    self.enter(&mut inner, BreakerState::Open);
                }
            }
            _ => {}
        }
    }

    fn probe_if_due(&self, inner: &mut Inner) {
        if inner.state == BreakerState::Open
            && self.clock.now().duration_since(inner.opened_at) >= self.config.open_for
        {
            self.enter(inner, BreakerState::HalfOpen);
        }
    }

    fn enter(&self, inner: &mut Inner, state: BreakerState) {
        let from = inner.state;
        let now = self.clock.now();
        inner.state = state;
        inner.episode += 1;
        inner.probes_out = 0;
        inner.probes_passed = 0;
        let counter = match state {
            BreakerState::Open => {
                inner.opened_at = now;
                &self.opened
            }
            BreakerState::HalfOpen => &self.half_opened,
            BreakerState::Closed => {
                inner.in_a_row = 0;
                inner.calls = 0;
                inner.failures = 0;
                inner.window_started = now;
                &self.closed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.breaker_changed(
                self.store,
                match state {
                    BreakerState::Closed => BreakerGauge::Closed,
                    BreakerState::HalfOpen => BreakerGauge::HalfOpen,
                    BreakerState::Open => BreakerGauge::Open,
                },
            );
        }
        tracing::warn!(store = %self.store, ?from, to = ?state, "circuit breaker changed state");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn breaker(clock: &Arc<ManualClock>) -> CircuitBreaker {
        CircuitBreaker::new(
            StoreKind::POSTGRES,
            BreakerConfig {
                consecutive_failures: 3,
                failure_rate: 0.5,
                min_calls: 10,
                window: Duration::from_secs(30),
                open_for: Duration::from_secs(5),
                probes: 2,
            },
            clock.clone(),
        )
    }

    fn call(b: &CircuitBreaker, failed: bool) -> Result<()> {
        let admission = b.admit()?;
        b.record(admission, failed);
        Ok(())
    }

    #[test]
    fn opens_after_failures_in_a_row_fails_fast_then_probes_and_closes() {
        let clock = Arc::new(ManualClock::default());
        let b = breaker(&clock);
        call(&b, true).unwrap();
        call(&b, false).unwrap(); // a success resets the run
        for _ in 0..3 {
            call(&b, true).unwrap();
        }
        assert_eq!(b.state(), BreakerState::Open);
        let refused = b.admit().unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        assert!(refused.is_temporary());
        assert_eq!(refused.store(), Some(StoreKind::POSTGRES));

        clock.advance(Duration::from_secs(5));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let (first, second) = (b.admit().unwrap(), b.admit().unwrap());
        assert!(b.admit().is_err(), "only the configured probes go through");
        b.record(first, false);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(second, false);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            b.transitions(),
            BreakerTransitions {
                opened: 1,
                half_opened: 1,
                closed: 1
            }
        );
    }

    #[test]
    fn a_failed_probe_reopens_and_late_answers_are_ignored() {
        let clock = Arc::new(ManualClock::default());
        let b = breaker(&clock);
        let slow = b.admit().unwrap(); // admitted before the outage, answers after it
        for _ in 0..3 {
            call(&b, true).unwrap();
        }
        clock.advance(Duration::from_secs(5));
        let probe = b.admit().unwrap();
        b.record(slow, false);
        assert_eq!(
            b.state(),
            BreakerState::HalfOpen,
            "a stale success closes nothing"
        );
        b.record(probe, true);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_err());
        assert_eq!(b.transitions().opened, 2);
    }

    #[test]
    fn opens_on_the_failure_rate_of_the_window() {
        let clock = Arc::new(ManualClock::default());
        let b = breaker(&clock);
        // Alternating: never three in a row, but half of ten calls failed.
        for i in 0..9 {
            call(&b, i % 2 == 0).unwrap();
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "fewer than min_calls so far"
        );
        call(&b, true).unwrap();
        assert_eq!(b.state(), BreakerState::Open);

        // A new window forgets old failures.
        let quiet = breaker(&clock);
        for i in 0..8 {
            call(&quiet, i % 2 == 0).unwrap();
        }
        clock.advance(Duration::from_secs(30));
        for _ in 0..2 {
            call(&quiet, true).unwrap();
        }
        assert_eq!(quiet.state(), BreakerState::Closed);
    }
}
