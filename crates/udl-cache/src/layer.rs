//! The caching layer itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands as _;
use sha2::Digest as _;
use tokio::sync::watch;
use udl_core::{
    AccessContext, EntityMeta, Query, Record, RecordStore, Result, StoreLayer, ValidChanges, Value,
};
use udl_redis::{CoalescedGet, RedisStore};
use udl_resilience::BreakerConfig;

use crate::codec;
use crate::guard::{Pending, RedisGuard};
use crate::l1::{new_l1, L1};
use crate::query_key::fingerprint;
use crate::stats::{CacheStats, Counts};
use crate::subscriber::{self, WHOLE_ENTITY};

/// The namespace of `entity`'s L2 record keys.
fn l2_namespace(entity: &EntityMeta) -> String {
    format!("c:{}:", entity.name)
}

/// Longest a walk of Redis's keys to forget an entity's records may take.
const WIPE_WITHIN: Duration = Duration::from_secs(5);

/// Sizes and lifetimes of the tiers.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Most records kept in L1; 0 turns L1 (and single-flight) off.
    pub l1_capacity: u64,
    /// L1 lifetime: also the longest another process's write can go unseen if its
    /// invalidation message is lost.
    pub l1_ttl: Duration,
    /// L2 (Redis) lifetime of a record.
    pub l2_ttl: Duration,
    /// L3 (Redis) lifetime of a query result.
    pub l3_ttl: Duration,
    /// Longest a cache call to Redis may take before the read goes to the source instead.
    pub l2_timeout: Duration,
    /// When Redis is skipped altogether (failures in a row) and for how long.
    pub redis_breaker: BreakerConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            l1_capacity: 10_000,
            l1_ttl: Duration::from_secs(30),
            l2_ttl: Duration::from_secs(600),
            l3_ttl: Duration::from_secs(60),
            l2_timeout: Duration::from_millis(100),
            redis_breaker: BreakerConfig::default(),
        }
    }
}

/// A record store with L1/L2/L3 caching in front of another.
pub struct CachedStore {
    inner: Arc<dyn RecordStore>,
    redis: RedisStore,
    l2_reads: CoalescedGet,
    guard: RedisGuard,
    l1: L1,
    counts: Counts,
    config: CacheConfig,
    channel: String,
    seen: watch::Receiver<u64>,
    _alive: Arc<()>,
}

/// Only entities that declare a cache are cached, and PII and PHI only sealed: the cache sits
/// below the privacy layer's encryption, which hands it the entity's stored form with every
/// such field as ciphertext (or in the clear only where the field declares why, as in the
/// store itself). Above encryption, such an entity is never cached.
fn cacheable(entity: &EntityMeta) -> bool {
    entity.cache.is_cached() && !entity.holds_unsealed_sensitive()
}

/// `ttl` in Redis's milliseconds, at least one.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn record_key(entity: &EntityMeta, id: &Value) -> String {
    let mut uuid = uuid::Uuid::encode_buffer();
    let rendered;
    let id: &str = match id {
        Value::Uuid(u) => u.hyphenated().encode_lower(&mut uuid),
        Value::Text(t) => t,
        other => {
            rendered = other.to_json().to_string();
            &rendered
        }
    };
    let mut key = String::with_capacity(entity.name.len() + 1 + id.len());
    key.push_str(entity.name);
    key.push('\u{0}');
    key.push_str(id);
    key
}

impl CachedStore {
    /// Caches `inner` using `redis` for L2, L3 and invalidation messages.
    pub async fn new(
        inner: Arc<dyn RecordStore>,
        redis: RedisStore,
        config: CacheConfig,
    ) -> Result<Arc<Self>> {
        let l1 = new_l1(config.l1_capacity, config.l1_ttl);
        let channel = redis.key("cache-invalidations");
        let (sender, seen) = watch::channel(0);
        let alive = Arc::new(());
        subscriber::start(
            redis.clone(),
            channel.clone(),
            l1.clone(),
            Arc::new(sender),
            Arc::downgrade(&alive),
        )
        .await?;
        Ok(Arc::new(CachedStore {
            inner,
            l2_reads: CoalescedGet::new(&redis),
            guard: RedisGuard::new(config.redis_breaker, config.l2_timeout),
            redis,
            l1,
            counts: Counts::default(),
            config,
            channel,
            seen,
            _alive: alive,
        }))
    }

    /// Counts invalidation messages received (from any process, this one included).
    pub fn invalidations(&self) -> watch::Receiver<u64> {
        self.seen.clone()
    }

    /// Where reads have been answered so far.
    pub fn stats(&self) -> CacheStats {
        self.counts.snapshot()
    }

    /// Whether Redis is being skipped (its breaker is open) after failing.
    pub fn redis_skipped(&self) -> bool {
        self.guard.breaker().state() == udl_resilience::BreakerState::Open
    }

    /// Records currently in L1.
    pub fn l1_len(&self) -> u64 {
        self.l1.entry_count()
    }

    /// L2 value of a record, or `None` on a miss or when Redis cannot be asked.
    async fn l2_get(&self, entity: &'static EntityMeta, key: &str) -> Option<Record> {
        if !entity.cache.uses_redis() || !self.redis_is_current().await {
            return None;
        }
        let bytes = self
            .guard
            .call("cache get", self.l2_reads.get(self.l2_key(entity, key)))
            .await??;
        codec::decode(entity, &bytes)
    }

    async fn l2_put(&self, entity: &EntityMeta, key: &str, record: &Record) {
        if !entity.cache.uses_redis() {
            return;
        }
        let mut conn = self.redis.connection();
        let put = conn.pset_ex::<_, _, ()>(
            self.l2_key(entity, key),
            codec::encode(entity, record),
            millis(entity.cache.ttl.unwrap_or(self.config.l2_ttl)),
        );
        self.guard.command("cache put", put).await;
    }

    /// Sends invalidations kept during an outage; whether Redis now holds nothing stale
    /// that this process knows of (only then are L2 and L3 read).
    async fn redis_is_current(&self) -> bool {
        match self.guard.take_pending() {
            None => true,
            Some(backlog) => self.deliver(backlog).await,
        }
    }

    /// Deletes, version moves, then messages (a process that hears one and reads again must
    /// not find the old L2 entry); kept for later when Redis does not take them.
    async fn deliver(&self, invalidations: Pending) -> bool {
        let mut pipe = redis::pipe();
        for key in &invalidations.deletes {
            pipe.del(key).ignore();
        }
        for key in &invalidations.versions {
            pipe.incr(key, 1).ignore();
        }
        let mut conn = self.redis.connection();
        let wiped = futures_util::future::join_all(
            invalidations.wipes.iter().map(|pattern| self.wipe(pattern)),
        )
        .await;
        if wiped.contains(&false) {
            tracing::warn!("cached records of an entity could not be forgotten in Redis yet; L2 is skipped until they are");
            self.guard.defer(invalidations);
            return false;
        }
        let sent = self
            .guard
            .call("cache invalidate", async {
                conn.apply(&pipe)
                    .await
                    .map_err(|e| udl_redis::classify(&e, "cache invalidate"))?;
                for message in &invalidations.messages {
                    conn.publish::<_, _, ()>(&self.channel, message)
                        .await
                        .map_err(|e| udl_redis::classify(&e, "cache invalidate"))?;
                }
                Ok(())
            })
            .await
            .is_some();
        if !sent {
            tracing::warn!("invalidation kept until Redis answers; other processes learn of this write when their L1 entries expire");
            self.guard.defer(invalidations);
        }
        sent
    }

    /// Deletes every L2 key matching `pattern`, within [`WIPE_WITHIN`] (it walks the keyspace).
    async fn wipe(&self, pattern: &str) -> bool {
        let mut conn = self.redis.connection();
        match tokio::time::timeout(WIPE_WITHIN, conn.unlink_matching(pattern)).await {
            Ok(Ok(true)) => true,
            Ok(Ok(false)) => {
                tracing::warn!("in a Redis cluster an entity's cached records cannot all be found; they expire with the L2 TTL");
                true
            }
            _ => false,
        }
    }

    /// Forgets record `id` of `entity`, changed by a writer outside this cache (seen in a
    /// change feed): here, in Redis, in cached query results and in every other process, as
    /// after a write through the cache.
    pub async fn forget(&self, entity: &'static EntityMeta, id: &Value) {
        self.invalidate(entity, &[id]).await
    }

    /// Forgets every cached record and query result of `entity` (a change feed lost its place,
    /// or the collection went away).
    pub async fn forget_all(&self, entity: &'static EntityMeta) {
        self.invalidate(entity, &[]).await
    }

    /// After a write: drop the keys here and in Redis, tell every process, and move the
    /// entity's version so its cached query results are no longer found.
    async fn invalidate(&self, entity: &'static EntityMeta, ids: &[&Value]) {
        let mut invalidations = self.guard.take_pending().unwrap_or_default();
        let message = match ids {
            [id] => {
                let key = record_key(entity, id);
                self.l1.invalidate(&key).await;
                invalidations.deletes.insert(self.l2_key(entity, &key));
                key
            }
            // Only bulk inserts write many ids at once, and new ids have no L2 entry (L2 holds
            // found records only); their L1 "not found" entries go with the whole entity.
            _ => {
                let prefix = format!("{}\u{0}", entity.name);
                let _ = self
                    .l1
                    .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
                format!("{}\u{0}{WHOLE_ENTITY}", entity.name)
            }
        };
        if ids.is_empty() {
            invalidations.wipes.insert(self.l2_pattern(entity));
        }
        invalidations.versions.insert(self.version_key(entity));
        invalidations.messages.insert(message);
        self.deliver(invalidations).await;
    }

    /// Record keys hold ids; in Redis they are hashed so no id is readable in a key. The
    /// entity's name stays readable, so all its records can be found and forgotten.
    fn l2_key(&self, entity: &EntityMeta, record_key: &str) -> String {
        let namespace = format!("c:{}:", entity.name);
        self.redis.digest_key(
            &namespace,
            &sha2::Sha256::digest(record_key.as_bytes()).into(),
        )
    }

    /// The pattern matching every L2 key of `entity` (glob characters of the prefix escaped).
    fn l2_pattern(&self, entity: &EntityMeta) -> String {
        let mut pattern = String::new();
        for c in self.redis.key(&l2_namespace(entity)).chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    fn version_key(&self, entity: &EntityMeta) -> String {
        self.redis.key(&format!("v:{}", entity.name))
    }

    /// L3 key of a query under the entity's current version, or `None` without Redis.
    async fn l3_key(&self, entity: &EntityMeta, query: &Query) -> Option<String> {
        if !self.redis_is_current().await {
            return None;
        }
        let mut conn = self.redis.connection();
        let version: Option<u64> = self
            .guard
            .command("cache version", conn.get(self.version_key(entity)))
            .await?;
        let namespace = format!("q:{}:{}:", entity.name, version.unwrap_or(0));
        Some(self.redis.digest_key(&namespace, &fingerprint(query)))
    }
}

#[async_trait]
impl StoreLayer for CachedStore {
    fn inner(&self) -> &dyn RecordStore {
        &*self.inner
    }

    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        let id = record.get(entity.id_field).cloned().unwrap_or(Value::Null);
        self.inner.insert(ctx, entity, record).await?;
        if cacheable(entity) {
            self.invalidate(entity, &[&id]).await;
        }
        Ok(())
    }

    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        let ids: Vec<Value> = records
            .iter()
            .map(|r| r.get(entity.id_field).cloned().unwrap_or(Value::Null))
            .collect();
        let n = self.inner.insert_many(ctx, entity, records).await?;
        if cacheable(entity) {
            let refs: Vec<&Value> = ids.iter().collect();
            self.invalidate(entity, &refs).await;
        }
        Ok(n)
    }

    /// L1, then L2, then the store; concurrent misses on one key share one load.
    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        if !cacheable(entity) {
            self.counts.load();
            return self.inner.fetch(ctx, entity, id).await;
        }
        let key = record_key(entity, id);
        let load = async {
            if let Some(record) = self.l2_get(entity, &key).await {
                self.counts.l2_hit();
                return Ok(Some(record));
            }
            self.counts.load();
            let loaded = self.inner.fetch(ctx, entity, id).await?;
            if let Some(record) = &loaded {
                self.l2_put(entity, &key, record).await;
            }
            Ok::<_, udl_core::Error>(loaded)
        };
        if self.config.l1_capacity == 0 {
            return load.await;
        }
        // A plain lookup first: cheaper than the single-flight entry on the hot path.
        if let Some(hit) = self.l1.get(&key).await {
            self.counts.l1_hit();
            return Ok(hit);
        }
        self.l1
            .try_get_with(key.clone(), load)
            .await
            .map_err(|e| e.clone_without_source())
    }

    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        let matched = self.inner.update(ctx, entity, id, changes).await;
        if cacheable(entity) {
            // Also after a conflict: the cached copy is evidently stale.
            self.invalidate(entity, &[id]).await;
        }
        matched
    }

    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        let deleted = self.inner.delete(ctx, entity, id).await?;
        if cacheable(entity) {
            self.invalidate(entity, &[id]).await;
        }
        Ok(deleted)
    }

    /// L3: whole result pages, keyed by the normalised query and the entity's version.
    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        if !cacheable(entity) || !entity.cache.uses_redis() {
            return self.inner.list(ctx, entity, query).await;
        }
        let Some(key) = self.l3_key(entity, query).await else {
            return self.inner.list(ctx, entity, query).await;
        };
        let mut conn = self.redis.connection();
        let cached = self
            .guard
            .command("cache list get", conn.get::<_, Option<Vec<u8>>>(&key))
            .await
            .flatten();
        if let Some(records) = cached.and_then(|bytes| codec::decode_list(entity, &bytes)) {
            return Ok(records);
        }
        let records = self.inner.list(ctx, entity, query).await?;
        let put = conn.pset_ex::<_, _, ()>(
            &key,
            codec::encode_list(entity, &records),
            millis(entity.cache.ttl.unwrap_or(self.config.l3_ttl)),
        );
        self.guard.command("cache list put", put).await;
        Ok(records)
    }

    async fn insert_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        let id = record.get(entity.id_field).cloned().unwrap_or(Value::Null);
        self.inner.insert_with_ttl(ctx, entity, record, ttl).await?;
        if cacheable(entity) {
            self.invalidate(entity, &[&id]).await;
        }
        Ok(())
    }
}
