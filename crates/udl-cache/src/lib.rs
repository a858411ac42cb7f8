//! The tiered cache: a [`CachedStore`] wraps any [`udl_core::RecordStore`] with
//! L1 (in-process, size-bounded, TTL), L2 (Redis, shared by every process) and L3 (results of
//! `list` calls keyed by the normalised query). Concurrent misses on one key cause one load;
//! writes through the layer invalidate L1 and L2 here and, over Redis pub/sub, in every other
//! process; a per-entity version stamp makes stale L3 entries unreachable after any write.
//!
//! Only entities that declare it are cached (`#[udl(cache = "l1")]`: this process only;
//! `"l1_l2"`: Redis too, query results included; `cache_ttl` bounds L2 and L3). Entities
//! holding PII or PHI are cached only in their encrypted stored form (the cache below
//! `udl_privacy::EncryptedStore`); with any such field in the clear they are never cached. When Redis
//! is down or slow, L2 and L3 are skipped (each call is bounded by `l2_timeout`, and after
//! repeated failures Redis is not asked at all until its breaker probes it again), L1 keeps
//! serving what it has and misses go to the source store; invalidations Redis missed are sent
//! before it is read again.

mod codec;
mod guard;
mod l1;
mod layer;
mod query_key;
mod stats;
mod subscriber;

pub use layer::{CacheConfig, CachedStore};
pub use stats::CacheStats;
