//! The MongoDB store: client and pool, server capabilities, repositories, health.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::MongoConfig;
use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use udl_core::{
    Capabilities, Capability, Entity, Error, ErrorKind, RecordStore, Repository, Result, StoreKind,
};

use crate::error::classify;
use crate::records::MongoRecords;
use crate::server::ServerInfo;
use crate::vector::{VectorIndexStatus, VectorIndexes};

/// What MongoDB offers through the generic API on every server (vector search as a bounded
/// exact scan). Transactions are added when the server is a replica set or sharded cluster.
const BASE: Capabilities = Capabilities::of(&[
    Capability::SecondaryFilters,
    Capability::Sorting,
    Capability::OffsetPagination,
    Capability::Count,
    Capability::BulkInsert,
    Capability::PrefixFilter,
    Capability::VectorSearch,
]);

/// A connected MongoDB store.
#[derive(Clone)]
pub struct MongoStore {
    database: Database,
    info: ServerInfo,
    records: Arc<MongoRecords>,
    /// Bounds each call inside a transaction (`resilience.timeout`), where no resilience
    /// layer does.
    transaction_call_timeout: std::time::Duration,
}

impl MongoStore {
    /// Connects as configured (pool size, idle time, server selection bounded by the pool's
    /// acquire timeout and connecting by its connect timeout, TLS when the URL asks for it) and
    /// asks the server what it can do.
    pub async fn connect(config: &MongoConfig) -> Result<Self> {
        let mut options = ClientOptions::parse(config.url.expose())
            .await
            .map_err(|e| classify(&e, "connect"))?;
        options.app_name = Some("udl".into());
        options.min_pool_size = Some(config.pool.min);
        options.max_pool_size = Some(config.pool.max);
        options.max_idle_time = Some(config.pool.idle_timeout);
        options.server_selection_timeout = Some(config.pool.acquire_timeout);
        options.connect_timeout = Some(config.pool.connect_timeout);
        let client = Client::with_options(options).map_err(|e| classify(&e, "connect"))?;
        let database = client.database(&config.database);
        let info = ServerInfo::detect(&database).await?;
        let mut caps = BASE;
        if info.transactions {
            caps = caps.with(Capability::Transactions);
        }
        if info.ttl_indexes {
            caps = caps.with(Capability::Ttl);
        }
        let vectors = VectorIndexes::new(info.change_streams, config);
        let records = Arc::new(MongoRecords::new(database.clone(), caps, vectors));
        Ok(MongoStore {
            database,
            info,
            records,
            transaction_call_timeout: config.resilience.timeout,
        })
    }

    /// Longest one call inside a transaction may take.
    pub(crate) fn transaction_call_timeout(&self) -> std::time::Duration {
        self.transaction_call_timeout
    }

    /// The record operations themselves.
    pub(crate) fn records_inner(&self) -> &MongoRecords {
        &self.records
    }

    /// The database, for BSON pipelines the generic API cannot express.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// What the server said about itself at connect.
    pub fn server(&self) -> &ServerInfo {
        &self.info
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

    /// The entities kept for a retention period.
    pub(crate) fn retained(&self) -> &crate::retained::Retained {
        self.records.retained()
    }

    /// The vector indexes this process keeps, with how many vectors each holds.
    pub fn vector_indexes(&self) -> Vec<VectorIndexStatus> {
        self.records.vectors().status()
    }

    /// A real round-trip (`ping`) within `timeout`; returns its latency.
    pub async fn health(&self, timeout: Duration) -> Result<Duration> {
        self.asked(timeout, doc! { "ping": 1 })
            .await
            .map(|(latency, _)| latency)
    }

    /// A real round trip (`hello`) within `timeout`: its latency, and for people the server,
    /// its topology as it answers now, and what udl detected at connect.
    pub async fn topology(&self, timeout: Duration) -> Result<(Duration, String)> {
        let (latency, hello) = self.asked(timeout, doc! { "hello": 1 }).await?;
        let server = if self.info.ferretdb {
            format!("FerretDB (as MongoDB {})", self.info.version)
        } else {
            format!("MongoDB {}", self.info.version)
        };
        let topology = match (hello.get_str("setName"), hello.get_str("primary")) {
            (Ok(set), Ok(primary)) => format!("replica set {set}, primary {primary}"),
            (Ok(set), Err(_)) => format!("replica set {set}, NO PRIMARY"),
            _ if hello.get_str("msg").is_ok_and(|m| m == "isdbgrid") => "sharded".to_owned(),
            _ => "standalone".to_owned(),
        };
        let can = |yes: bool, what: &str| {
            if yes {
                what.to_owned()
            } else {
                format!("no {what}")
            }
        };
        let detected = [
            can(self.info.transactions, "transactions"),
            can(self.info.ttl_indexes, "ttl"),
            can(self.info.native_vector_search, "$vectorSearch"),
        ]
        .join(", ");
        Ok((latency, format!("{server}, {topology}; {detected}")))
    }

    async fn asked(&self, timeout: Duration, command: Document) -> Result<(Duration, Document)> {
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.database.run_command(command)).await {
            Ok(Ok(reply)) => Ok((started.elapsed(), reply)),
            Ok(Err(e)) => Err(classify(&e, "health")),
            Err(_) => Err(Error::new(ErrorKind::Timeout, "health check timed out")
                .with_store(StoreKind::MONGO)
                .with_operation("health")),
        }
    }
}
