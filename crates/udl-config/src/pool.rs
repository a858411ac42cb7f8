//! Connection-pool settings shared by every store, with per-store defaults.

use std::fmt;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;

/// Largest pool udl accepts for one store.
pub const MAX_POOL_SIZE: u64 = 1000;

/// Pool sizing and connection lifecycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections kept open even when idle.
    pub min: u32,
    /// Most connections open at once.
    pub max: u32,
    /// Longest opening one connection may take (TCP, TLS, authentication).
    pub connect_timeout: Duration,
    /// How long a caller waits for a free connection before `Timeout`.
    pub acquire_timeout: Duration,
    /// Idle connections above `min` are closed after this long.
    pub idle_timeout: Duration,
    /// Connections are replaced after this long, whatever their state.
    pub max_lifetime: Duration,
    /// Check every connection is alive before handing it out (a round trip per checkout);
    /// default off: PostgreSQL pings only a connection that sat idle for a second.
    pub test_before_acquire: bool,
}

impl PoolConfig {
    /// Defaults with the given size range.
    pub fn sized(min: u32, max: u32) -> Self {
        PoolConfig {
            min,
            max,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(1800),
            test_before_acquire: false,
        }
    }

    /// Reads `<store>.pool` over `defaults`.
    pub fn read(parent: &mut Section, defaults: PoolConfig, problems: &mut Vec<Problem>) -> Self {
        let Some(mut s) = parent.section("pool", problems) else {
            return defaults;
        };
        let mut pool = defaults;
        let before = problems.len();
        if let Some(n) = s.int("min", 0, MAX_POOL_SIZE, problems) {
            pool.min = n as u32;
        }
        if let Some(n) = s.int("max", 1, MAX_POOL_SIZE, problems) {
            pool.max = n as u32;
        }
        if let Some(d) = s.duration("connect_timeout", problems) {
            pool.connect_timeout = d;
        }
        if let Some(d) = s.duration("acquire_timeout", problems) {
            pool.acquire_timeout = d;
        }
        if let Some(d) = s.duration("idle_timeout", problems) {
            pool.idle_timeout = d;
        }
        if let Some(d) = s.duration("max_lifetime", problems) {
            pool.max_lifetime = d;
        }
        if let Some(b) = s.bool("test_before_acquire", problems) {
            pool.test_before_acquire = b;
        }
        if problems.len() == before && pool.min > pool.max {
            problems.push(Problem {
                key: format!("{}.pool.min", parent_path(&s)),
                problem: format!("must not exceed pool.max ({} > {})", pool.min, pool.max),
            });
        }
        s.finish(problems);
        pool
    }
}

fn parent_path(pool: &Section) -> String {
    pool.path().trim_end_matches(".pool").to_owned()
}

impl fmt::Display for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min = {}\nmax = {}\nconnect_timeout = \"{}\"\nacquire_timeout = \"{}\"\nidle_timeout = \"{}\"\nmax_lifetime = \"{}\"\ntest_before_acquire = {}\n",
            self.min,
            self.max,
            humantime::format_duration(self.connect_timeout),
            humantime::format_duration(self.acquire_timeout),
            humantime::format_duration(self.idle_timeout),
            humantime::format_duration(self.max_lifetime),
            self.test_before_acquire
        )
    }
}
