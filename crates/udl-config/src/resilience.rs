//! `<store>.resilience`: the timeout, concurrency limit, retries and circuit breaker that
//! udl's resilience layer applies to the store.

use std::fmt;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;

/// One store's resilience settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResilienceSettings {
    /// Longest one attempt may take.
    pub timeout: Duration,
    /// Calls in flight at once.
    pub max_concurrent: u32,
    /// Longest a call waits for a free slot.
    pub max_wait: Duration,
    /// Attempts of a read in all (1 = no retry); writes are attempted once.
    pub read_attempts: u32,
    /// Failures in a row that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before probing.
    pub breaker_open_for: Duration,
    /// Largest filter value (a `starts_with` prefix, an `eq` text, ...) or record id, in bytes.
    pub max_filter_value_bytes: usize,
    /// Most values in one filter, `in` lists included.
    pub max_filter_values: usize,
}

impl Default for ResilienceSettings {
    fn default() -> Self {
        ResilienceSettings {
            timeout: Duration::from_secs(5),
            max_concurrent: 64,
            max_wait: Duration::from_secs(5),
            read_attempts: 3,
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(10),
            max_filter_value_bytes: 4096,
            max_filter_values: 1000,
        }
    }
}

impl ResilienceSettings {
    /// Reads `<store>.resilience` over the defaults.
    pub fn read(parent: &mut Section, problems: &mut Vec<Problem>) -> Self {
        let mut out = ResilienceSettings::default();
        let Some(mut s) = parent.section("resilience", problems) else {
            return out;
        };
        if let Some(d) = s.duration("timeout", problems) {
            out.timeout = d;
        }
        if let Some(n) = s.int("max_concurrent", 1, 10_000, problems) {
            out.max_concurrent = n as u32;
        }
        if let Some(d) = s.duration("max_wait", problems) {
            out.max_wait = d;
        }
        if let Some(n) = s.int("read_attempts", 1, 10, problems) {
            out.read_attempts = n as u32;
        }
        if let Some(n) = s.int("breaker_failures", 1, 1_000, problems) {
            out.breaker_failures = n as u32;
        }
        if let Some(d) = s.duration("breaker_open_for", problems) {
            out.breaker_open_for = d;
        }
        if let Some(n) = s.int("max_filter_value_bytes", 64, 16 << 20, problems) {
            out.max_filter_value_bytes = n as usize;
        }
        if let Some(n) = s.int("max_filter_values", 1, 100_000, problems) {
            out.max_filter_values = n as usize;
        }
        s.finish(problems);
        out
    }
}

impl fmt::Display for ResilienceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = humantime::format_duration;
        write!(
            f,
            "timeout = \"{}\"\nmax_concurrent = {}\nmax_wait = \"{}\"\nread_attempts = {}\nbreaker_failures = {}\nbreaker_open_for = \"{}\"\nmax_filter_value_bytes = {}\nmax_filter_values = {}\n",
            d(self.timeout),
            self.max_concurrent,
            d(self.max_wait),
            self.read_attempts,
            self.breaker_failures,
            d(self.breaker_open_for),
            self.max_filter_value_bytes,
            self.max_filter_values
        )
    }
}
