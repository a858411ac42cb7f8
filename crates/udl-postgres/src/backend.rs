//! PostgreSQL as a [`Backend`]: its records, health with pool figures, the platform's
//! migrations and models.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use udl_core::{
    Backend, EntityMeta, MigrationReport, MigrationStatus, PoolFigures, Probe, RecordStore, Result,
    StoreKind,
};

use crate::models;
use crate::store::PgStore;

#[async_trait]
impl Backend for PgStore {
    fn kind(&self) -> StoreKind {
        StoreKind::POSTGRES
    }

    fn location(&self) -> String {
        format!("schema {}", self.schema())
    }

    fn unaudited_records(&self) -> Option<Arc<dyn RecordStore>> {
        Some(PgStore::records(self))
    }

    async fn probe(&self, timeout: Duration) -> Result<Probe> {
        let health = self.health(timeout).await?;
        let options = self.pool().options();
        Ok(Probe {
            latency: health.latency,
            pool: Some(PoolFigures {
                open: health.pool_size,
                idle: u32::try_from(health.idle).unwrap_or(u32::MAX),
                min: options.get_min_connections(),
                max: options.get_max_connections(),
            }),
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

    async fn close(&self) {
        self.pool().close().await;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
