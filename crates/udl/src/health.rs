//! Health of every configured store at once: each is connected on its own and given a real
//! round trip (PostgreSQL `SELECT 1`, MongoDB `ping`, Redis `PING` with a unique token, CQL
//! `SELECT now() FROM system.local`) within a timeout. PostgreSQL is the source of truth, so
//! without it udl is down; without any other store it is degraded.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use udl_config::UdlConfig;
use udl_core::{ErrorKind, Result, StoreKind};

/// The verdict over all stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overall {
    /// Every configured store answered.
    Ready,
    /// A store other than PostgreSQL did not answer.
    Degraded,
    /// PostgreSQL did not answer.
    Down,
}

impl Overall {
    /// `ready`, `degraded` or `down`.
    pub fn name(self) -> &'static str {
        match self {
            Overall::Ready => "ready",
            Overall::Degraded => "degraded",
            Overall::Down => "down",
        }
    }
}

/// One store's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreHealth {
    /// Which store.
    pub store: StoreKind,
    /// Round-trip time, when it answered.
    pub latency: Option<Duration>,
    /// Why it did not answer (the error's kind only: messages stay in the logs).
    pub error: Option<ErrorKind>,
    /// Pool figures, where the store has them.
    pub detail: String,
}

/// Every configured store's answer and the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The verdict.
    pub overall: Overall,
    /// One line per configured store.
    pub stores: Vec<StoreHealth>,
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<10} {:<6} {:>10}  detail",
            "store", "status", "latency"
        )?;
        for s in &self.stores {
            let (status, latency) = match (s.latency, s.error) {
                (Some(l), _) => ("up", format!("{:.1} ms", l.as_secs_f64() * 1e3)),
                (None, Some(kind)) => ("DOWN", format!("{kind:?}").to_lowercase()),
                (None, None) => ("DOWN", String::new()),
            };
            writeln!(
                f,
                "{:<10} {status:<6} {latency:>10}  {}",
                s.store.name(),
                s.detail
            )?;
        }
        write!(f, "overall: {}", self.overall.name())
    }
}

/// Connects with `connect` and asks `health`, all within `timeout`.
async fn probe<S, C, H>(
    store: StoreKind,
    timeout: Duration,
    connect: C,
    health: impl FnOnce(S) -> H,
) -> StoreHealth
where
    C: Future<Output = Result<S>>,
    H: Future<Output = Result<(Duration, String)>>,
{
    let connected_and_asked = async {
        match connect.await {
            Ok(connected) => health(connected).await,
            Err(e) => Err(e),
        }
    };
    let outcome = tokio::time::timeout(timeout, connected_and_asked)
        .await
        .unwrap_or_else(|_| {
            Err(udl_core::Error::new(
                ErrorKind::Timeout,
                "no answer in time",
            ))
        });
    match outcome {
        Ok((latency, detail)) => StoreHealth {
            store,
            latency: Some(latency),
            error: None,
            detail,
        },
        Err(e) => {
            tracing::warn!(store = %store, error = %e, "health check failed");
            StoreHealth {
                store,
                latency: None,
                error: Some(e.kind()),
                detail: String::new(),
            }
        }
    }
}

/// Checks every store configured in `config`, all at once, each within `timeout`.
pub async fn check(config: &UdlConfig, timeout: Duration) -> HealthReport {
    #[cfg(feature = "postgres")]
    let postgres = async {
        match &config.postgres {
            Some(c) => Some(
                probe(
                    StoreKind::Postgres,
                    timeout,
                    udl_postgres::PgStore::connect(c),
                    |pg| async move {
                        let h = pg.health(timeout).await?;
                        Ok((
                            h.latency,
                            format!("pool {} open, {} idle", h.pool_size, h.idle),
                        ))
                    },
                )
                .await,
            ),
            None => None,
        }
    };
    #[cfg(not(feature = "postgres"))]
    let postgres = async { None };
    #[cfg(feature = "mongo")]
    let mongo = async {
        match &config.mongo {
            Some(c) => Some(
                probe(
                    StoreKind::Mongo,
                    timeout,
                    udl_mongo::MongoStore::connect(c),
                    |m| async move { Ok((m.health(timeout).await?, String::new())) },
                )
                .await,
            ),
            None => None,
        }
    };
    #[cfg(not(feature = "mongo"))]
    let mongo = async { None };
    #[cfg(feature = "redis")]
    let redis = async {
        match &config.redis {
            Some(c) => Some(
                probe(
                    StoreKind::Redis,
                    timeout,
                    udl_redis::RedisStore::connect(c),
                    |r| async move { Ok((r.health(timeout).await?, String::new())) },
                )
                .await,
            ),
            None => None,
        }
    };
    #[cfg(not(feature = "redis"))]
    let redis = async { None };
    #[cfg(feature = "scylla")]
    let scylla = async {
        match &config.scylla {
            Some(c) => Some(
                probe(
                    StoreKind::Scylla,
                    timeout,
                    udl_scylla::ScyllaStore::connect(c),
                    |s| async move { Ok((s.health(timeout).await?, String::new())) },
                )
                .await,
            ),
            None => None,
        }
    };
    #[cfg(not(feature = "scylla"))]
    let scylla = async { None };

    let (postgres, mongo, redis, scylla) = tokio::join!(postgres, mongo, redis, scylla);
    let stores: Vec<StoreHealth> = [postgres, mongo, redis, scylla]
        .into_iter()
        .flatten()
        .collect();
    let down = |kind| {
        stores
            .iter()
            .any(|s| s.store == kind && s.latency.is_none())
    };
    let overall = if down(StoreKind::Postgres) {
        Overall::Down
    } else if stores.iter().any(|s| s.latency.is_none()) {
        Overall::Degraded
    } else {
        Overall::Ready
    };
    HealthReport { overall, stores }
}
