//! `DataLayer::connect(config)`: every configured store, connected.

use std::sync::Arc;

use udl_config::{ResilienceSettings, UdlConfig};
use udl_core::{Entity, Error, ErrorKind, RecordStore, Repository, Result, StoreKind};
use udl_metrics::Metrics;
use udl_resilience::{ResilienceConfig, ResilientStore};

/// The connected stores of one process.
#[derive(Clone)]
pub struct DataLayer {
    #[cfg(feature = "postgres")]
    postgres: Option<udl_postgres::PgStore>,
    #[cfg(feature = "mongo")]
    mongo: Option<udl_mongo::MongoStore>,
    #[cfg(feature = "redis")]
    redis: Option<udl_redis::RedisStore>,
    #[cfg(feature = "scylla")]
    scylla: Option<udl_scylla::ScyllaStore>,
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
}

/// How often pool sizes are sampled for the resize log and the pool gauges.
#[cfg(feature = "postgres")]
const POOL_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl DataLayer {
    fn layer(&mut self, records: Arc<dyn RecordStore>, settings: &ResilienceSettings) {
        let kind = records.kind();
        let layered = ResilientStore::new(
            records,
            ResilienceConfig::from(settings),
            Arc::clone(&self.metrics),
        );
        self.layered.push((kind, layered));
    }
}

impl DataLayer {
    /// Connects every store configured in `config`, reporting to metrics of its own.
    pub async fn connect(config: &UdlConfig) -> Result<Self> {
        Self::connect_with_metrics(config, Arc::new(Metrics::new())).await
    }

    /// Connects every store configured in `config`, reporting to `metrics`.
    pub async fn connect_with_metrics(config: &UdlConfig, metrics: Arc<Metrics>) -> Result<Self> {
        let mut data = DataLayer {
            #[cfg(feature = "postgres")]
            postgres: match &config.postgres {
                Some(pg) => Some(udl_postgres::PgStore::connect(pg).await?),
                None => None,
            },
            #[cfg(feature = "mongo")]
            mongo: match &config.mongo {
                Some(m) => Some(udl_mongo::MongoStore::connect(m).await?),
                None => None,
            },
            #[cfg(feature = "redis")]
            redis: match &config.redis {
                Some(r) => Some(
                    udl_redis::RedisStore::connect(r)
                        .await?
                        .with_metrics(Arc::clone(&metrics)),
                ),
                None => None,
            },
            #[cfg(feature = "scylla")]
            scylla: match &config.scylla {
                Some(s) => Some(
                    udl_scylla::ScyllaStore::connect(s)
                        .await?
                        .with_metrics(Arc::clone(&metrics)),
                ),
                None => None,
            },
            layered: Vec::new(),
            metrics,
            #[cfg(feature = "scylla")]
            spool: None,
            #[cfg(feature = "privacy")]
            privacy: None,
        };
        #[cfg(feature = "scylla")]
        if let (Some(store), Some(dir)) = (
            &data.scylla,
            config.scylla.as_ref().and_then(|c| c.spool_dir.as_ref()),
        ) {
            let spool = crate::spool::Spool::start(store, dir, Arc::clone(&data.metrics)).await?;
            data.spool = Some(Arc::new(spool));
        }
        #[cfg(feature = "postgres")]
        if let (Some(store), Some(c)) = (&data.postgres, &config.postgres) {
            // Ends by itself when the pool is closed.
            store.watch_pool(Arc::clone(&data.metrics), POOL_SAMPLE_EVERY);
            let records = store.records();
            data.layer(records, &c.resilience);
        }
        #[cfg(feature = "privacy")]
        if let (Some(store), Some(privacy)) = (&data.postgres, &config.privacy) {
            data.privacy = Some(crate::privacy_setup::Privacy::start(store, privacy).await?);
        }
        #[cfg(feature = "mongo")]
        if let (Some(store), Some(c)) = (&data.mongo, &config.mongo) {
            let records = store.records();
            data.layer(records, &c.resilience);
        }
        #[cfg(feature = "scylla")]
        if let (Some(store), Some(c)) = (&data.scylla, &config.scylla) {
            let records = store.records();
            data.layer(records, &c.resilience);
        }
        Ok(data)
    }

    /// The metrics every layer of this data layer reports to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    #[cfg(feature = "privacy")]
    fn privacy(&self, what: &str) -> Result<&crate::privacy_setup::Privacy> {
        self.privacy.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("{what} needs [privacy] (privacy.key_ring_file)"),
            )
        })
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

    /// The record store of `store` behind its resilience layer, below the privacy layers:
    /// for tools that move stored data as it is (use [`DataLayer::repository`] for entities).
    pub fn records(&self, store: StoreKind) -> Result<Arc<dyn RecordStore>> {
        self.layered
            .iter()
            .find(|(kind, _)| *kind == store)
            .map(|(_, records)| Arc::clone(records) as Arc<dyn RecordStore>)
            .ok_or_else(|| not_configured(store))
    }

    /// Where each layered store's circuit breaker stands.
    pub fn breaker_states(&self) -> Vec<(StoreKind, udl_resilience::BreakerState)> {
        self.layered
            .iter()
            .map(|(kind, layer)| (*kind, layer.breaker().state()))
            .collect()
    }

    /// A repository of `T` on `store`, behind the privacy layers (when `[privacy]` is
    /// configured: audit, then encryption) and the store's resilience layer. An entity with encrypted fields is refused
    /// without `[privacy]`, so it is never stored in the clear.
    pub fn repository<T: Entity>(&self, store: StoreKind) -> Result<Repository<T>> {
        Repository::new(self.protect(T::meta(), self.records(store)?)?)
    }

    /// `inner` behind the privacy layers, for entity `entity`; use it to put them above a
    /// cache (`udl::cache::CachedStore`) so that Redis holds only what they let through.
    pub fn protect(
        &self,
        entity: &'static udl_core::EntityMeta,
        inner: Arc<dyn RecordStore>,
    ) -> Result<Arc<dyn RecordStore>> {
        #[cfg(feature = "privacy")]
        if let Some(privacy) = &self.privacy {
            return Ok(privacy.protect(inner));
        }
        if entity.has_encrypted_fields() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} has encrypted fields; configure [privacy] (privacy.key_ring_file) \
                     to store it",
                    entity.name
                ),
            ));
        }
        Ok(inner)
    }

    /// The PostgreSQL store, or a `Config` error when `[postgres]` is not configured.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Result<&udl_postgres::PgStore> {
        self.postgres
            .as_ref()
            .ok_or_else(|| not_configured(StoreKind::Postgres))
    }

    /// The MongoDB store, or a `Config` error when `[mongo]` is not configured.
    #[cfg(feature = "mongo")]
    pub fn mongo(&self) -> Result<&udl_mongo::MongoStore> {
        self.mongo
            .as_ref()
            .ok_or_else(|| not_configured(StoreKind::Mongo))
    }
}

impl DataLayer {
    /// The Redis store, or a `Config` error when `[redis]` is not configured.
    #[cfg(feature = "redis")]
    pub fn redis(&self) -> Result<&udl_redis::RedisStore> {
        self.redis
            .as_ref()
            .ok_or_else(|| not_configured(StoreKind::Redis))
    }
}

impl DataLayer {
    /// The ScyllaDB store, or a `Config` error when `[scylla]` is not configured.
    #[cfg(feature = "scylla")]
    pub fn scylla(&self) -> Result<&udl_scylla::ScyllaStore> {
        self.scylla
            .as_ref()
            .ok_or_else(|| not_configured(StoreKind::Scylla))
    }

    /// The chat archive, its message texts sealed and its reads audited by the privacy layers;
    /// a `Config` error without `[scylla]` or `[privacy]`.
    #[cfg(feature = "scylla")]
    pub fn chat_archive(&self) -> Result<udl_scylla::models::ChatArchive> {
        use udl_core::Entity as _;
        let records = self.protect(
            udl_scylla::models::ArchivedMessage::meta(),
            self.records(StoreKind::Scylla)?,
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
            .with_store(StoreKind::Scylla)
        })
    }
}

impl DataLayer {
    /// Stops background work: the spool gets a last replay within `grace` (what remains stays
    /// on disk for the next start) and PostgreSQL's pool is closed.
    #[cfg_attr(not(feature = "scylla"), allow(unused_variables))]
    pub async fn shutdown(&self, grace: std::time::Duration) {
        #[cfg(feature = "scylla")]
        if let Some(spool) = &self.spool {
            let left = spool.stop_and_flush(grace).await;
            if left > 0 {
                tracing::warn!(left, "analytics writes still spooled at shutdown");
            }
        }
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.postgres {
            pg.pool().close().await;
        }
    }
}

fn not_configured(store: StoreKind) -> Error {
    let key = if store == StoreKind::Scylla {
        "nodes"
    } else {
        "url"
    };
    Error::new(
        ErrorKind::Config,
        format!(
            "{store} is not configured (set {store}.{key} or UDL__{}__{})",
            store.name().to_uppercase(),
            key.to_uppercase()
        ),
    )
    .with_store(store)
}
