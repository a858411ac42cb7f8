//! The stores this build can connect: one registration each, which is all the data layer, the
//! health monitor and `udl migrate` know of them. Everything else they ask goes through
//! [`Backend`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use udl_config::{ResilienceSettings, StoreConfig, StoreReader, UdlConfig};
use udl_core::{Backend, Result, StoreKind};
use udl_metrics::Metrics;

/// A connection being made.
pub(crate) type Connecting<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Backend>>> + Send + 'a>>;

/// How one kind of store is found in the configuration and connected.
#[derive(Clone, Copy)]
pub(crate) struct Registration {
    /// How its config section is read (the section's name is the store's kind).
    pub reader: StoreReader,
    /// Connects it from its section (present, as `configured` said), reporting to the metrics.
    pub connect: for<'a> fn(&'a UdlConfig, Arc<Metrics>) -> Connecting<'a>,
}

impl Registration {
    /// Which store: the one its section names.
    pub fn kind(&self) -> StoreKind {
        StoreKind::named(self.reader.section)
    }

    /// Its resilience settings, when its section is configured (`None`: not configured).
    pub fn configured<'a>(&self, config: &'a UdlConfig) -> Option<&'a ResilienceSettings> {
        config
            .stores()
            .find(|s| s.section() == self.reader.section)
            .map(|s| s.resilience())
    }

    /// Connects the store when `config` has its section.
    pub fn connect_if_configured<'a>(
        &self,
        config: &'a UdlConfig,
        metrics: &Arc<Metrics>,
    ) -> Option<Connecting<'a>> {
        self.configured(config)?;
        Some((self.connect)(config, Arc::clone(metrics)))
    }
}

/// How often PostgreSQL's pool sizes are sampled for the resize log and the pool gauges.
#[cfg(feature = "postgres")]
const POOL_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Every store this build can connect, PostgreSQL (the source of truth) first.
pub(crate) fn registrations() -> Vec<Registration> {
    vec![
        #[cfg(feature = "postgres")]
        Registration {
            reader: udl_postgres::PostgresConfig::READER,
            connect: |c, metrics| {
                Box::pin(async move {
                    let store = udl_postgres::PgStore::connect(section(c)?).await?;
                    // Ends by itself when the pool is closed.
                    store.watch_pool(metrics, POOL_SAMPLE_EVERY);
                    Ok(backend(store))
                })
            },
        },
        #[cfg(feature = "mongo")]
        Registration {
            reader: udl_mongo::MongoConfig::READER,
            connect: |c, _| {
                Box::pin(async move {
                    use udl_core::Entity as _;
                    // Interaction logs are kept `retention.interaction_logs` from when they
                    // happened.
                    let store = udl_mongo::MongoStore::connect(section(c)?).await?.keeping(
                        udl_mongo::models::PatientInteractionLog::meta(),
                        "occurred_at",
                        c.retention.interaction_logs,
                    );
                    Ok(backend(store))
                })
            },
        },
        #[cfg(feature = "redis")]
        Registration {
            reader: udl_redis::RedisConfig::READER,
            connect: |c, metrics| {
                Box::pin(async move {
                    let store = udl_redis::RedisStore::connect(section(c)?).await?;
                    Ok(backend(store.with_metrics(metrics)))
                })
            },
        },
        #[cfg(feature = "scylla")]
        Registration {
            reader: udl_scylla::ScyllaConfig::READER,
            connect: |c, metrics| {
                Box::pin(async move {
                    let store = udl_scylla::ScyllaStore::connect(section(c)?)
                        .await?
                        .keeping(c.retention.analytics, c.retention.chat_archive);
                    Ok(backend(store.with_metrics(metrics)))
                })
            },
        },
    ]
}

fn backend<B: Backend>(store: B) -> Arc<dyn Backend> {
    Arc::new(store)
}

/// A store's config section, which `configured` found present.
#[allow(dead_code)] // used by whichever backends are compiled in
fn section<S: StoreConfig>(config: &UdlConfig) -> Result<&S> {
    config.store().ok_or_else(|| {
        udl_core::Error::new(
            udl_core::ErrorKind::Internal,
            "a store was connected without its section",
        )
    })
}
