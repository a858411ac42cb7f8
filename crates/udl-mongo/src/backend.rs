//! MongoDB as a [`Backend`]: its records, health, the platform's migrations and models.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use udl_core::{
    Backend, EntityMeta, MigrationReport, MigrationStatus, Probe, RecordStore, Result, StoreKind,
};

use crate::models;
use crate::store::MongoStore;

#[async_trait]
impl Backend for MongoStore {
    fn kind(&self) -> StoreKind {
        StoreKind::MONGO
    }

    fn location(&self) -> String {
        format!("database {}", self.database().name())
    }

    fn unaudited_records(&self) -> Option<Arc<dyn RecordStore>> {
        Some(MongoStore::records(self))
    }

    async fn probe(&self, timeout: Duration) -> Result<Probe> {
        let (latency, detail) = self.topology(timeout).await?;
        Ok(Probe {
            latency,
            pool: None,
            detail: Some(detail),
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

    /// Stops the vector indexes following their feeds and saves them (with
    /// `mongo.vector_index_dir`), so the next process opens them instead of building them.
    /// Then ends the driver's background tasks now, rather than leaving them to be cut off
    /// when the runtime stops (where the driver panics on a closed channel). Cursors and
    /// sessions are not waited for.
    async fn close(&self) {
        self.records_inner().vectors().close(self.database()).await;
        self.database()
            .client()
            .clone()
            .shutdown()
            .immediate(true)
            .await;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
