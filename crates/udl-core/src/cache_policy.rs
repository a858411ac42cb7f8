//! How an entity's records may be cached, declared on the entity:
//! `#[udl(cache = "l1" | "l1_l2", cache_ttl = "10m")]`. Nothing is cached unless declared.

use std::time::Duration;

/// Which cache tiers may hold an entity's records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CacheTiers {
    /// Never cached (the default).
    #[default]
    None,
    /// In this process only.
    L1,
    /// In this process and in Redis, shared by every process (query results included).
    L1L2,
}

/// An entity's cache declaration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CachePolicy {
    /// Where its records may be kept.
    pub tiers: CacheTiers,
    /// How long a cached record or query result may be served; `None`: the cache's defaults.
    pub ttl: Option<Duration>,
}

impl CachePolicy {
    /// Not cached.
    pub const NONE: CachePolicy = CachePolicy {
        tiers: CacheTiers::None,
        ttl: None,
    };

    /// Whether any tier may hold the entity.
    pub const fn is_cached(&self) -> bool {
        !matches!(self.tiers, CacheTiers::None)
    }

    /// Whether Redis (L2 records, L3 query results) may hold the entity.
    pub const fn uses_redis(&self) -> bool {
        matches!(self.tiers, CacheTiers::L1L2)
    }
}
