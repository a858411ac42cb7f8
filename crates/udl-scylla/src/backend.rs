//! ScyllaDB as a [`Backend`]: its records, health, the platform's migrations and models.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use udl_core::{
    Backend, EntityMeta, MigrationReport, MigrationStatus, Probe, RecordStore, Result, StoreKind,
};

use crate::models;
use crate::store::ScyllaStore;

#[async_trait]
impl Backend for ScyllaStore {
    fn kind(&self) -> StoreKind {
        StoreKind::SCYLLA
    }

    fn location(&self) -> String {
        format!("keyspace {}", self.keyspace())
    }

    fn unaudited_records(&self) -> Option<Arc<dyn RecordStore>> {
        Some(ScyllaStore::records(self))
    }

    async fn probe(&self, timeout: Duration) -> Result<Probe> {
        Ok(Probe {
            latency: self.health(timeout).await?,
            pool: None,
            detail: None,
        })
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        models::migrator().up(self).await
    }

    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        models::migrator().status(self).await
    }

    fn models(&self) -> Vec<&'static EntityMeta> {
        models::entities()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
