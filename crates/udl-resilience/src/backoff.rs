//! Exponential backoff with full jitter: the pause before retry `n` is uniform in
//! `[0, min(max, base · 2ⁿ)]`, so callers that failed together do not retry together.

use std::time::Duration;

/// How many attempts a call gets and how long to pause between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first pause.
    pub base: Duration,
    /// Ceiling of any pause.
    pub max: Duration,
    /// Attempts in all, the first one included (1 = never retry).
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(25),
            max: Duration::from_secs(1),
            max_attempts: 3,
        }
    }
}

impl Backoff {
    /// Whether a call that has made `attempts` attempts may make another.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// The longest pause before retry number `retry` (0 = the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The pause before retry number `retry`, drawn from `rng`.
    pub fn delay_with(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(retry).as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(rng.u64(0..=ceiling))
    }

    /// The pause before retry number `retry`.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, &mut fastrand::Rng::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_exponentially_up_to_the_cap_and_are_jittered() {
        let b = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
            max_attempts: 4,
        };
        let ceilings: Vec<u128> = (0..6).map(|r| b.ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 100, 100]);
        assert_eq!(b.ceiling(200), Duration::from_millis(100), "no overflow");
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<Duration> = (0..200).map(|_| b.delay_with(3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(80)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 150, "full jitter spreads the pauses");
        assert!((1..4).all(|a| b.allows_another(a)) && !b.allows_another(4));
    }
}
