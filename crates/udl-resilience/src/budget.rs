//! A retry budget: retries may add at most a share of the recent traffic (plus a small floor
//! for quiet periods), so when a store is down, retries do not multiply the load on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// Retries allowed per window: `floor + ratio × requests` of the current window.
pub struct RetryBudget {
    ratio: f64,
    floor: u64,
    window: Duration,
    clock: Arc<dyn Clock>,
    /// First attempts in the current window: counted on every call, so a plain atomic.
    requests: AtomicU64,
    state: Mutex<Window>,
}

struct Window {
    started: Instant,
    retries: u64,
}

impl RetryBudget {
    /// Retries of up to `ratio` of the requests (0.2 = 20%) plus `floor`, per `window`.
    pub fn new(ratio: f64, floor: u64, window: Duration, clock: Arc<dyn Clock>) -> Self {
        let started = clock.now();
        RetryBudget {
            ratio: ratio.clamp(0.0, 1.0),
            floor,
            window,
            clock,
            requests: AtomicU64::new(0),
            state: Mutex::new(Window {
                started,
                retries: 0,
            }),
        }
    }

    /// Counts one first attempt (the window moves on when a retry is asked for).
    pub fn record_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_retry(&self) -> bool {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        if now.duration_since(w.started) >= self.window {
            w.started = now;
            w.retries = 0;
            self.requests.store(0, Ordering::Relaxed);
        }
        let requests = self.requests.load(Ordering::Relaxed);
        let allowed = self.floor as f64 + self.ratio * requests as f64;
        if (w.retries as f64) < allowed {
            w.retries += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn retries_are_a_share_of_traffic_and_the_window_refills() {
        let clock = Arc::new(ManualClock::default());
        let budget = RetryBudget::new(0.2, 2, Duration::from_secs(10), clock.clone());
        for _ in 0..100 {
            budget.record_request();
        }
        let granted = (0..100).filter(|_| budget.try_retry()).count();
        assert_eq!(granted, 22, "2 + 20% of 100");
        clock.advance(Duration::from_secs(10));
        let quiet = (0..10).filter(|_| budget.try_retry()).count();
        assert_eq!(quiet, 2, "a new window starts with the floor only");
    }
}
