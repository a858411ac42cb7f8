//! The stores this build can connect: one registration each, which is all the data layer, the
//! health monitor and `udl migrate` know of them. Everything else they ask goes through
//! [`Backend`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use udl_config::{ResilienceSettings, UdlConfig};
use udl_core::{Backend, Result, StoreKind};
use udl_metrics::Metrics;

/// A connection being made.
pub(crate) type Connecting<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Backend>>> + Send + 'a>>;

/// How one kind of store is found in the configuration and connected.
#[derive(Clone, Copy)]
pub(crate) struct Registration {
    /// Which store.
    pub kind: StoreKind,
    /// Its resilience settings, when its section is configured (`None`: not configured).
    pub configured: fn(&UdlConfig) -> Option<&ResilienceSettings>,
    /// Connects it from its section (present, as `configured` said), reporting to the metrics.
    pub connect: for<'a> fn(&'a UdlConfig, Arc<Metrics>) -> Connecting<'a>,
}

impl Registration {
    /// Connects the store when `config` has its section.
    pub fn connect_if_configured<'a>(
        &self,
        config: &'a UdlConfig,
        metrics: &Arc<Metrics>,
    ) -> Option<Connecting<'a>> {
        (self.configured)(config)?;
        Some((self.connect)(config, Arc::clone(metrics)))
    }
}

/// Every store this build can connect, PostgreSQL (the source of truth) first.
pub(crate) fn registrations() -> Vec<Registration> {
    vec![
        #[cfg(feature = "postgres")]
        Registration {
            kind: StoreKind::Postgres,
            configured: |c| c.postgres.as_ref().map(|s| &s.resilience),
            connect: |c, _| {
                Box::pin(async move {
                    Ok(backend(
                        udl_postgres::PgStore::connect(section(&c.postgres)?).await?,
                    ))
                })
            },
        },
        #[cfg(feature = "mongo")]
        Registration {
            kind: StoreKind::Mongo,
            configured: |c| c.mongo.as_ref().map(|s| &s.resilience),
            connect: |c, _| {
                Box::pin(async move {
                    Ok(backend(
                        udl_mongo::MongoStore::connect(section(&c.mongo)?).await?,
                    ))
                })
            },
        },
        #[cfg(feature = "redis")]
        Registration {
            kind: StoreKind::Redis,
            configured: |c| c.redis.as_ref().map(|s| &s.resilience),
            connect: |c, metrics| {
                Box::pin(async move {
                    let store = udl_redis::RedisStore::connect(section(&c.redis)?).await?;
                    Ok(backend(store.with_metrics(metrics)))
                })
            },
        },
        #[cfg(feature = "scylla")]
        Registration {
            kind: StoreKind::Scylla,
            configured: |c| c.scylla.as_ref().map(|s| &s.resilience),
            connect: |c, metrics| {
                Box::pin(async move {
                    let store = udl_scylla::ScyllaStore::connect(section(&c.scylla)?).await?;
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
fn section<S>(section: &Option<S>) -> Result<&S> {
    section.as_ref().ok_or_else(|| {
        udl_core::Error::new(
            udl_core::ErrorKind::Internal,
            "a store was connected without its section",
        )
    })
}
