//! The backend contract: what the data layer, health checks and `udl migrate` ask of every
//! connected store without naming it. Each store's crate implements it on its store; the facade
//! lists the stores it can connect (one registration line each).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::entity::EntityMeta;
use crate::error::Result;
use crate::migration::{MigrationReport, MigrationStatus};
use crate::store::RecordStore;
use crate::store_kind::StoreKind;

/// A pool's connection counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// Connections open.
    pub open: u32,
    /// Connections open and idle.
    pub idle: u32,
    /// The configured floor.
    pub min: u32,
    /// The configured ceiling.
    pub max: u32,
}

/// What one health probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The round trip's time.
    pub latency: Duration,
    /// The pool's figures, where the driver reports them.
    pub pool: Option<PoolFigures>,
    /// What people are told about the server (version, topology, what udl detected it can
    /// do), printed by `udl health`; never served over HTTP.
    pub detail: Option<String>,
}

/// A connected store.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Which store this is.
    fn kind(&self) -> StoreKind;

    /// Where its data lives, for people: `schema udl`, `database udl`, `keyspace udl`.
    fn location(&self) -> String {
        String::new()
    }

    /// Its generic record store, when entities live in it (Redis holds none): below every
    /// layer, for the data layer to build stacks on and for tools, never for serving requests.
    fn unaudited_records(&self) -> Option<Arc<dyn RecordStore>> {
        None
    }

    /// One real round trip within `timeout`.
    async fn probe(&self, timeout: Duration) -> Result<Probe>;

    /// Applies the platform's pending migrations of this store.
    async fn migrate(&self) -> Result<MigrationReport> {
        Ok(MigrationReport::default())
    }

    /// The platform's migrations of this store and where each stands.
    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        Ok(Vec::new())
    }

    /// The platform's models that live in this store.
    fn models(&self) -> Vec<&'static EntityMeta> {
        Vec::new()
    }

    /// Closes its connections politely (what a dropped handle does anyway, sooner).
    async fn close(&self) {}

    /// The store itself, for its own extension (`PgStore::pool()`, `MongoStore::database()`).
    fn as_any(&self) -> &dyn Any;
}
