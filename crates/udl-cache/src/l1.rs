//! L1, the in-process tier: record key → the record, or `None` for "known not to exist".
//! Shared by the cache layer (reads, single-flight loads, local invalidation) and the
//! subscriber (invalidations from other processes).

use std::time::Duration;

use udl_core::Record;

/// The in-process tier.
pub(crate) type L1 = moka::future::Cache<String, Option<Record>, foldhash::fast::RandomState>;

/// An L1 of at most `capacity` records, each kept at most `ttl`.
pub(crate) fn new_l1(capacity: u64, ttl: Duration) -> L1 {
    moka::future::Cache::builder()
        .max_capacity(capacity)
        .time_to_live(ttl)
        .support_invalidation_closures()
        // Seeded per process like std's hasher, and several times faster on short keys.
        .build_with_hasher(foldhash::fast::RandomState::default())
}
