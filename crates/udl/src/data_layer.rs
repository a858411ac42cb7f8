//! `DataLayer::connect(config)`: every configured store, connected.

use std::sync::Arc;

use udl_config::{ResilienceSettings, UdlConfig};
use udl_core::{
    Backend, Entity, EntityMeta, Error, ErrorKind, MigrationReport, RecordStore, Registry,
    Repository, Result, StoreKind,
};
use udl_metrics::Metrics;
use udl_resilience::{ResilienceConfig, ResilientStore};

/// The connected stores of one process.
#[derive(Clone)]
pub struct DataLayer {
    /// Every configured store, connected, in registration order.
    backends: Vec<Arc<dyn Backend>>,
    /// Each record store behind its resilience layer: one per store, so its breaker and
    /// concurrency limit see all of that store's traffic.
    layered: Vec<(StoreKind, Arc<ResilientStore>)>,
    metrics: Arc<Metrics>,
    #[cfg(feature = "scylla")]
    spool: Option<Arc<crate::spool::Spool>>,
    /// The privacy layers when `[privacy]` is configured: every repository then encrypts and
    /// audits.
    #[cfg(feature = "privacy")]
    privacy: Option<crate::privacy_setup::Privacy>,
    /// Each layered store behind the tiered cache, when Redis is configured: used for the
    /// entities that declare a cache.
    #[cfg(feature = "cache")]
    cached: Vec<(StoreKind, Arc<udl_cache::CachedStore>)>,
    /// The change feeds that keep cached MongoDB entities true to writes made around udl.
    #[cfg(all(feature = "mongo", feature = "cache"))]
    followers: Arc<crate::change_follower::Followers>,
    /// Every entity this process uses.
    registry: Registry,
}

impl DataLayer {
    /// Takes a connected backend in: its records behind the resilience layer, its models into
    /// the registry.
    fn add(
        &mut self,
        backend: Arc<dyn Backend>,
        settings: Option<&ResilienceSettings>,
    ) -> Result<()> {
        if let (Some(records), Some(settings)) = (backend.unaudited_records(), settings) {
            let kind = records.kind();
            let layered = ResilientStore::new(
                records,
                ResilienceConfig::from(settings),
                Arc::clone(&self.metrics),
            );
            self.layered.push((kind, layered));
        }
        let models = backend.models();
        self.backends.push(backend);
        models
            .into_iter()
            .try_for_each(|entity| self.registry.register(entity))
    }
}

impl DataLayer {
    /// Connects every store configured in `config`, reporting to metrics of its own.
    pub async fn connect(config: &UdlConfig) -> Result<Self> {
        Self::connect_with_metrics(config, Arc::new(Metrics::new())).await
    }

    /// Connects every store configured in `config`, reporting to `metrics`.
    pub async fn connect_with_metrics(config: &UdlConfig, metrics: Arc<Metrics>) -> Result<Self> {
        let mut data = Self::connect_stores_with_metrics(config, metrics).await?;
        if let Err(e) = data.start_store_features(config).await {
            data.shutdown(std::time::Duration::ZERO).await;
            return Err(e);
        }
        Ok(data)
    }

    /// Connects every store configured in `config` and nothing that runs over them: no
    /// analytics spool, privacy layers or cache, which all use tables that migrations create.
    /// This is what `udl migrate` connects; PII and PHI entities cannot be reached through it.
    pub async fn connect_stores(config: &UdlConfig) -> Result<Self> {
        Self::connect_stores_with_metrics(config, Arc::new(Metrics::new())).await
    }

    async fn connect_stores_with_metrics(
        config: &UdlConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let mut data = DataLayer {
            backends: Vec::new(),
            layered: Vec::new(),
            metrics,
            #[cfg(feature = "scylla")]
            spool: None,
            #[cfg(feature = "privacy")]
            privacy: None,
            #[cfg(feature = "cache")]
            cached: Vec::new(),
            #[cfg(all(feature = "mongo", feature = "cache"))]
            followers: Arc::default(),
            registry: Registry::new(),
        };
        for registration in crate::backends::registrations() {
            let Some(connecting) = registration.connect_if_configured(config, &data.metrics) else {
                continue;
            };
            let added = match connecting.await {
                Ok(backend) => data.add(backend, registration.configured(config)),
                Err(e) => Err(e),
            };
            if let Err(e) = added {
                // What connected before is closed, not dropped: drivers' background tasks
                // must not outlive the runtime (the MongoDB driver panics when they do).
                data.shutdown(std::time::Duration::ZERO).await;
                return Err(e);
            }
        }
        Ok(data)
    }

    /// What runs over particular stores: the analytics spool (ScyllaDB), the privacy layers
    /// (kept in PostgreSQL), and the tiered cache over every layered store (in Redis).
    #[cfg_attr(not(feature = "scylla"), allow(unused_variables))]
    async fn start_store_features(&mut self, config: &UdlConfig) -> Result<()> {
        #[cfg(feature = "scylla")]
        if let (Ok(store), Some(dir)) = (
            self.scylla(),
            config
                .store::<udl_scylla::ScyllaConfig>()
                .and_then(|c| c.spool_dir.as_ref()),
        ) {
            let spool = crate::spool::Spool::start(store, dir, Arc::clone(&self.metrics)).await?;
            self.spool = Some(Arc::new(spool));
        }
        #[cfg(feature = "privacy")]
        if let (Ok(store), Some(privacy)) = (self.postgres(), &config.privacy) {
            let layered = Arc::clone(self.resilient(StoreKind::POSTGRES)?);
            let metrics = Arc::clone(&self.metrics);
            let history_kept = config.retention.phi_change_history;
            let started = crate::privacy_setup::Privacy::start(
                store,
                layered,
                privacy,
                history_kept,
                metrics,
            )
            .await?;
            self.privacy = Some(started);
        }
        #[cfg(feature = "cache")]
        if let Ok(redis) = self.redis() {
            let redis = redis.clone();
            for (kind, layered) in &self.layered {
                let layered = Arc::clone(layered) as Arc<dyn RecordStore>;
                let config = udl_cache::CacheConfig::default();
                let cached = udl_cache::CachedStore::new(layered, redis.clone(), config).await?;
                self.cached.push((*kind, cached));
            }
        }
        #[cfg(all(feature = "mongo", feature = "cache"))]
        self.follow_cached_mongo_entities().await;
        Ok(())
    }

    /// Starts a change feed for every registered MongoDB entity that declares a cache (see
    /// `change_follower`): the entities known at connect, i.e. the platform's models.
    #[cfg(all(feature = "mongo", feature = "cache"))]
    async fn follow_cached_mongo_entities(&self) {
        let (Ok(mongo), Some((_, cached))) = (
            self.mongo(),
            self.cached
                .iter()
                .find(|(kind, _)| *kind == StoreKind::MONGO),
        ) else {
            return;
        };
        for entity in self.registry.entities() {
            if entity.cache.is_cached() && entity.store == Some(StoreKind::MONGO) {
                self.followers.follow(mongo, cached, entity).await;
            }
        }
    }

    /// Every connected store, PostgreSQL first.
    pub fn backends(&self) -> &[Arc<dyn Backend>] {
        &self.backends
    }

    /// Applies the platform's pending migrations of every connected store that holds entities
    /// (only those have migrations), in order.
    pub async fn migrate(&self) -> Result<Vec<(StoreKind, MigrationReport)>> {
        let mut reports = Vec::with_capacity(self.backends.len());
        for backend in &self.backends {
            if backend.unaudited_records().is_some() {
                reports.push((backend.kind(), backend.migrate().await?));
            }
        }
        Ok(reports)
    }

    /// The connected store of kind `kind` as its own type `S`.
    fn store<S: 'static>(&self, kind: StoreKind) -> Result<&S> {
        let backend = self
            .backends
            .iter()
            .find(|b| b.kind() == kind)
            .ok_or_else(|| not_configured(kind))?;
        backend.as_any().downcast_ref::<S>().ok_or_else(|| {
            Error::new(ErrorKind::Internal, "a store is not of its kind's type").with_store(kind)
        })
    }

    /// Every entity this process uses: the platform's models of the configured stores, those
    /// registered with [`DataLayer::register`], and every entity a repository was taken for.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds `T` to the registry (validating its declaration), so that whatever walks every
    /// entity (migrations, change capture, the gateway) knows it before a repository is taken.
    pub fn register<T: Entity>(&self) -> Result<()> {
        self.registry.register(T::meta())
    }

    /// The metrics every layer of this data layer reports to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    #[cfg(feature = "privacy")]
    pub(crate) fn privacy(&self, what: &str) -> Result<&crate::privacy_setup::Privacy> {
        self.privacy.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("{what} needs [privacy] (privacy.key_ring_file)"),
            )
        })
    }

    /// The audit writer (how far its journal is behind PostgreSQL), or a `Config` error without
    /// `[privacy]`.
    #[cfg(feature = "privacy")]
    pub fn audit_writer(&self) -> Result<&udl_privacy::audit::AuditWriter> {
        Ok(&self.privacy("the audit writer")?.audit)
    }

    /// The history of changes to PHI fields, or a `Config` error without `[privacy]`.
    #[cfg(feature = "privacy")]
    pub fn change_history(&self) -> Result<&udl_privacy::history::ChangeHistory> {
        Ok(&self.privacy("the change history")?.history)
    }

    /// The token vault, or a `Config` error without `[privacy]`.
    #[cfg(feature = "privacy")]
    pub fn token_vault(&self) -> Result<&udl_privacy::tokens::TokenVault> {
        Ok(&self.privacy("the token vault")?.vault)
    }

    /// The record store of `store` behind its resilience layer, with no access policy, audit,
    /// encryption or cache: for tools that move stored data as it is (key rotation, migrations).
    /// Serve requests through [`DataLayer::repository`].
    pub fn unaudited_records(&self, store: StoreKind) -> Result<Arc<dyn RecordStore>> {
        Ok(Arc::clone(self.resilient(store)?) as Arc<dyn RecordStore>)
    }

    /// `store`'s resilience layer.
    fn resilient(&self, store: StoreKind) -> Result<&Arc<ResilientStore>> {
        self.layered
            .iter()
            .find(|(kind, _)| *kind == store)
            .map(|(_, layered)| layered)
            .ok_or_else(|| not_configured(store))
    }

    /// Where reads of the entities that declare a cache were answered so far, in the tiered
    /// cache over `store` (`None` without Redis). Only the figures: the cache itself sits below
    /// the privacy layers and is reached through repositories.
    #[cfg(feature = "cache")]
    pub fn cache_stats(&self, store: StoreKind) -> Option<udl_cache::CacheStats> {
        self.cache_over(store).map(|cached| cached.stats())
    }

    /// Where each layered store's circuit breaker stands.
    pub fn breaker_states(&self) -> Vec<(StoreKind, udl_resilience::BreakerState)> {
        self.layered
            .iter()
            .map(|(kind, layer)| (*kind, layer.breaker().state()))
            .collect()
    }

    /// The repository of `T` in the store it declares (`#[udl(store = "...")]`), with its
    /// whole stack, always in this order: access policy and audit, field encryption (both when
    /// `[privacy]` is configured), the tiered cache (only when `T` declares one and Redis is
    /// configured), the store's resilience layer, the store. An entity holding PII or PHI is
    /// refused (`Config`) without `[privacy]`; so is one that declares no store (use
    /// [`DataLayer::repository_in`]).
    pub fn repository<T: Entity>(&self) -> Result<Repository<T>> {
        let meta = T::meta();
        let store = meta.store.ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} declares no store: add #[udl(store = \"postgres\")] (or mongo, \
                     scylla), or use DataLayer::repository_in",
                    meta.name
                ),
            )
        })?;
        self.repository_in(store)
    }

    /// The records of `entity` in the store it declares, with the whole stack
    /// [`DataLayer::repository`] builds: for generic callers (the HTTP gateway) that work from
    /// declarations rather than Rust types.
    pub fn records(&self, entity: &'static EntityMeta) -> Result<udl_core::Records> {
        let store = entity.store.ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("entity {} declares no store", entity.name),
            )
        })?;
        udl_core::Records::new(self.records_for(entity, store)?, entity)
    }

    /// The repository of `T` in `store`, with the same stack as [`DataLayer::repository`]: for
    /// entities that declare no store (generic ones placed by the caller). An entity that
    /// declares another store is refused.
    pub fn repository_in<T: Entity>(&self, store: StoreKind) -> Result<Repository<T>> {
        Repository::new(self.records_for(T::meta(), store)?)
    }

    /// `entity`'s whole stack over `store` (as [`DataLayer::repository_in`] builds it) at the
    /// level of records, for generic callers that work from entity declarations rather than
    /// types; `entity` is registered. An entity that declares another store is refused.
    pub fn records_for(
        &self,
        entity: &'static EntityMeta,
        store: StoreKind,
    ) -> Result<Arc<dyn RecordStore>> {
        self.admit_entity(entity, store)?;
        self.protect(entity, self.cached_or_layered(entity, store)?)
    }

    /// Registers `entity`, to be reached in `store`: refused when it declares another one.
    pub(crate) fn admit_entity(&self, entity: &'static EntityMeta, store: StoreKind) -> Result<()> {
        if entity.store.is_some_and(|declared| declared != store) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("entity {} lives in another store than {store}", entity.name),
            )
            .with_store(store));
        }
        self.registry.register(entity)
    }

    /// The tiered cache over `store`, when Redis is configured.
    #[cfg(feature = "cache")]
    pub(crate) fn cache_over(&self, store: StoreKind) -> Option<&Arc<udl_cache::CachedStore>> {
        self.cached
            .iter()
            .find(|(kind, _)| *kind == store)
            .map(|(_, cached)| cached)
    }

    /// `store` behind its resilience layer, and the cache above it when `entity` declares one
    /// and Redis is configured.
    fn cached_or_layered(
        &self,
        entity: &'static EntityMeta,
        store: StoreKind,
    ) -> Result<Arc<dyn RecordStore>> {
        #[cfg(feature = "cache")]
        if entity.cache.is_cached() {
            if let Some(cached) = self.cache_over(store) {
                #[cfg(feature = "mongo")]
                if let (StoreKind::MONGO, Ok(mongo)) = (store, self.mongo()) {
                    self.followers.follow_soon(mongo, cached, entity);
                }
                return Ok(Arc::clone(cached) as Arc<dyn RecordStore>);
            }
        }
        #[cfg(not(feature = "cache"))]
        let _ = entity;
        self.unaudited_records(store)
    }

    /// `inner` behind the privacy layers for `entity`; without `[privacy]`, `inner` itself for
    /// an entity that holds no PII or PHI and a `Config` error for one that does.
    pub(crate) fn protect(
        &self,
        entity: &'static EntityMeta,
        inner: Arc<dyn RecordStore>,
    ) -> Result<Arc<dyn RecordStore>> {
        #[cfg(feature = "privacy")]
        if let Some(privacy) = &self.privacy {
            return Ok(privacy.protect(inner));
        }
        if entity.is_sensitive() || entity.has_encrypted_fields() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} holds PII or PHI; configure [privacy] (privacy.key_ring_file) \
                     to reach it: it is then encrypted, access-checked and audited",
                    entity.name
                ),
            ));
        }
        Ok(inner)
    }

    /// The PostgreSQL store, or a `Config` error when `[postgres]` is not configured.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Result<&udl_postgres::PgStore> {
        self.store(StoreKind::POSTGRES)
    }

    /// The MongoDB store, or a `Config` error when `[mongo]` is not configured.
    #[cfg(feature = "mongo")]
    pub fn mongo(&self) -> Result<&udl_mongo::MongoStore> {
        self.store(StoreKind::MONGO)
    }

    /// The repository of `T` over a transaction's `records` in `store`, behind the privacy
    /// layers; an entity that declares a cache is refused, as writes inside a transaction
    /// could leave it stale after the commit.
    pub(crate) fn transaction_repository<T: Entity>(
        &self,
        store: StoreKind,
        records: std::sync::Arc<dyn udl_core::RecordStore>,
    ) -> Result<Repository<T>> {
        let meta = T::meta();
        if meta.cache.is_cached() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} declares a cache, which writes inside a transaction would leave \
                     stale; write it outside the transaction",
                    meta.name
                ),
            )
            .with_store(store));
        }
        self.admit_entity(meta, store)?;
        Repository::new(self.protect(meta, records)?)
    }
}

impl DataLayer {
    /// The Redis store, or a `Config` error when `[redis]` is not configured.
    #[cfg(feature = "redis")]
    pub fn redis(&self) -> Result<&udl_redis::RedisStore> {
        self.store(StoreKind::REDIS)
    }
}

impl DataLayer {
    /// The ScyllaDB store, or a `Config` error when `[scylla]` is not configured.
    #[cfg(feature = "scylla")]
    pub fn scylla(&self) -> Result<&udl_scylla::ScyllaStore> {
        self.store(StoreKind::SCYLLA)
    }

    /// The chat archive, its message texts sealed and its reads audited by the privacy layers;
    /// a `Config` error without `[scylla]` or `[privacy]`.
    #[cfg(feature = "scylla")]
    pub fn chat_archive(&self) -> Result<udl_scylla::models::ChatArchive> {
        use udl_core::Entity as _;
        let records = self.records_for(
            udl_scylla::models::ArchivedMessage::meta(),
            StoreKind::SCYLLA,
        )?;
        udl_scylla::models::ChatArchive::new(self.scylla()?, records)
    }

    /// Metric points and events, spooled while ScyllaDB is unreachable and replayed in the
    /// background; a `Config` error unless `scylla.spool_dir` is set.
    #[cfg(feature = "scylla")]
    pub fn analytics(&self) -> Result<&udl_scylla::SpooledAnalytics> {
        self.spool.as_deref().map(|s| &*s.analytics).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "analytics need scylla.spool_dir (UDL__SCYLLA__SPOOL_DIR)",
            )
            .with_store(StoreKind::SCYLLA)
        })
    }
}

impl DataLayer {
    /// Stops background work: audit entries in the local journal and the analytics spool get
    /// `grace` each to reach their store (what remains stays on disk for the next start), then
    /// every store's connections are closed.
    #[cfg_attr(
        not(any(feature = "scylla", feature = "privacy")),
        allow(unused_variables)
    )]
    pub async fn shutdown(&self, grace: std::time::Duration) {
        #[cfg(all(feature = "mongo", feature = "cache"))]
        self.followers.stop();
        #[cfg(feature = "privacy")]
        if let Some(privacy) = &self.privacy {
            let left = privacy.audit.flush(grace).await;
            if left > 0 {
                tracing::warn!(
                    left,
                    "audit entries had not reached PostgreSQL at shutdown; they stay in the local journal and ship when a process next starts on it"
                );
            }
        }
        #[cfg(feature = "scylla")]
        if let Some(spool) = &self.spool {
            let left = spool.stop_and_flush(grace).await;
            if left > 0 {
                tracing::warn!(left, "analytics writes still spooled at shutdown");
            }
        }
        for backend in &self.backends {
            backend.close().await;
        }
    }
}

/// The `Config` error for a store this data layer does not have, saying whether it is only
/// unconfigured or not in this build at all.
fn not_configured(store: StoreKind) -> Error {
    let built: Vec<&str> = crate::backends::registrations()
        .iter()
        .map(|r| r.reader.section)
        .collect();
    let message = if built.contains(&store.name()) {
        format!(
            "{store} is not configured: add its [{store}] section (or UDL__{}__* variables)",
            store.name().to_uppercase()
        )
    } else {
        format!(
            "this build has no {store} backend (it has {}): check the entity's \
             #[udl(store = ...)] and the udl crate's features",
            built.join(", ")
        )
    };
    Error::new(ErrorKind::Config, message).with_store(store)
}
