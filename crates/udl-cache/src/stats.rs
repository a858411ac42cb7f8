//! Where record reads were answered: the figures behind a hit ratio.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running counts kept by a cache.
#[derive(Default)]
pub(crate) struct Counts {
    l1_hits: AtomicU64,
    l2_hits: AtomicU64,
    loads: AtomicU64,
}

/// A snapshot of a cache's read counts since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from this process's memory.
    pub l1_hits: u64,
    /// Reads answered from Redis.
    pub l2_hits: u64,
    /// Reads that went to the source store (concurrent misses on one key count once).
    pub loads: u64,
}

impl Counts {
    pub(crate) fn l1_hit(&self) {
        self.l1_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn l2_hit(&self) {
        self.l2_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn load(&self) {
        self.loads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            l1_hits: self.l1_hits.load(Ordering::Relaxed),
            l2_hits: self.l2_hits.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
        }
    }
}
