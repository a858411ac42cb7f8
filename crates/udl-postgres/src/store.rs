//! The PostgreSQL store: connection pool, repositories, transactions.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;

use crate::config::PostgresConfig;
use futures_util::FutureExt as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;
use udl_core::{Entity, Error, ErrorKind, RecordStore, Repository, Result, StoreKind};

use crate::error::classify;
use crate::executor::{Executor, SharedTx};
use crate::records::PgRecords;
use crate::transaction::PgTransaction;

/// A connected PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    records: Arc<PgRecords>,
    schema: String,
}

/// A pooled connection idle this long is pinged before it is handed out (unless
/// `pool.test_before_acquire` pings every one).
const IDLE_PING: std::time::Duration = std::time::Duration::from_secs(1);

impl PgStore {
    /// Connects a pool as configured: size, timeouts, lifetime, health check before reuse,
    /// TLS when the URL's `sslmode` asks for it, `search_path` set to the configured schema.
    pub async fn connect(config: &PostgresConfig) -> Result<Self> {
        let options = connect_options(config)?;
        let pool = config.pool.clone();
        // One direct connection first: the pool would retry until its acquire timeout and
        // report only that, while this says why (refused, authentication, unknown database).
        let probe =
            tokio::time::timeout(pool.connect_timeout, PgConnection::connect_with(&options))
                .await
                .map_err(|_| {
                    Error::new(
                        ErrorKind::Timeout,
                        "connecting took longer than pool.connect_timeout",
                    )
                    .with_store(StoreKind::POSTGRES)
                    .with_operation("connect")
                })?
                .map_err(|e| classify(&e, "connect"))?;
        let _ = probe.close().await;
        let mut pool_options = PgPoolOptions::new()
            .min_connections(pool.min)
            .max_connections(pool.max)
            .acquire_timeout(pool.acquire_timeout)
            .idle_timeout(Some(pool.idle_timeout))
            .max_lifetime(Some(pool.max_lifetime))
            .test_before_acquire(pool.test_before_acquire);
        if !pool.test_before_acquire {
            // A ping on every checkout doubles each call's round trips. Only a connection that
            // sat idle is pinged (where a restarted server or a dropped idle link shows); one
            // that dies in use fails its call, which the resilience layer retries.
            pool_options = pool_options.before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            });
        }
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|e| classify(&e, "connect"))?;
        Ok(Self::from_pool(pool, config.schema.clone()))
    }

    /// Wraps an existing pool whose connections already use `schema`.
    pub fn from_pool(pool: PgPool, schema: String) -> Self {
        let records = Arc::new(PgRecords {
            exec: Executor::Pool(pool.clone()),
        });
        PgStore {
            pool,
            records,
            schema,
        }
    }

    /// The sqlx pool, for SQL the generic API cannot express. Bind every value.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema holding udl's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The record-level store, for layers that wrap any backend.
    pub fn records(&self) -> Arc<dyn RecordStore> {
        self.records.clone()
    }

    /// A typed repository of `T`, which must hold no PII or PHI (those are reached through
    /// `DataLayer::repository`, behind the access policy and audit).
    pub fn repository<T: Entity>(&self) -> Result<Repository<T>> {
        Repository::new(self.records())
    }

    /// A typed repository of `T` with no access policy or audit even when `T` holds PII or
    /// PHI: for tools and tests that read stored data as it is, never for serving requests.
    pub fn unaudited_repository<T: Entity>(&self) -> Result<Repository<T>> {
        Repository::unaudited(self.records())
    }

    /// Runs `work` in one transaction: commits when it returns `Ok`, rolls back when it
    /// returns `Err` or panics (the panic then continues).
    ///
    /// ```text
    /// store.transaction(|tx| async move {
    ///     let subs = tx.repository::<Subscription>()?;
    ///     subs.update(&ctx, &id, Changes::new().set("status", "cancelled")).await?;
    ///     Ok(())
    /// }).await?;
    /// ```
    pub async fn transaction<R, F, Fut>(&self, work: F) -> Result<R>
    where
        F: FnOnce(PgTransaction) -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        let tx = self.pool.begin().await.map_err(|e| classify(&e, "begin"))?;
        let shared: SharedTx = Arc::new(Mutex::new(Some(tx)));
        let handle = PgTransaction::new(PgRecords {
            exec: Executor::Tx(Arc::clone(&shared)),
        });
        let outcome = AssertUnwindSafe(work(handle)).catch_unwind().await;
        let tx = shared.lock().await.take();
        match (outcome, tx) {
            (Ok(Ok(value)), Some(tx)) => {
                tx.commit().await.map_err(|e| classify(&e, "commit"))?;
                Ok(value)
            }
            (Ok(Ok(_)), None) => Err(Error::new(ErrorKind::Internal, "transaction vanished")
                .with_store(StoreKind::POSTGRES)
                .with_operation("commit")),
            (Ok(Err(e)), tx) => {
                if let Some(tx) = tx {
                    // The caller's error matters more than a failed rollback; the server
                    // rolls back by itself when the connection is dropped anyway.
                    let _ = tx.rollback().await;
                }
                Err(e)
            }
            (Err(panic), tx) => {
                if let Some(tx) = tx {
                    let _ = tx.rollback().await;
                }
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// sqlx connect options from config: URL (with its TLS settings), schema and timeouts.
pub fn connect_options(config: &PostgresConfig) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(config.url.expose()).map_err(|_| {
        Error::new(
            ErrorKind::Config,
            "postgres.url is not a usable connection URL",
        )
        .with_store(StoreKind::POSTGRES)
    })?;
    let timeout_ms = config.statement_timeout.as_millis().to_string();
    Ok(options.application_name("udl").options([
        ("search_path", config.schema.as_str()),
        ("statement_timeout", timeout_ms.as_str()),
    ]))
}
