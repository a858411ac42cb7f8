//! [`EncryptedStore`]: field encryption and blind indexes as a layer over any record store.
//! Callers see their entity; the store below sees its stored form and never a plaintext value
//! of an encrypted field. Put it above the cache, so Redis holds only ciphertext too.

use std::sync::Arc;
use std::time::Duration;
use udl_core::op;

use async_trait::async_trait;
use udl_core::{
    AccessContext, Capabilities, Capability, EntityMeta, Filter, Query, Record, RecordStore,
    Result, StoreLayer, ValidChanges, Value,
};

use crate::field_keys::FieldKeys;
use crate::sealing::Sealer;

/// Encrypts the fields each entity marks `encrypt` on their way into `inner`, and opens them
/// on the way out.
pub struct EncryptedStore {
    inner: Arc<dyn RecordStore>,
    keys: Arc<FieldKeys>,
}

impl EncryptedStore {
    /// `inner` behind field encryption with `keys`.
    pub fn new(inner: Arc<dyn RecordStore>, keys: Arc<FieldKeys>) -> Arc<Self> {
        Arc::new(EncryptedStore { inner, keys })
    }

    fn sealer(&self, entity: &'static EntityMeta, operation: &'static str) -> Result<Sealer<'_>> {
        Sealer::new(&self.keys, self.inner.kind().name(), entity)
            .map_err(|e| self.attribute(e, operation))
    }

    fn attribute(&self, error: udl_core::Error, operation: &'static str) -> udl_core::Error {
        error
            .with_store(self.inner.kind())
            .with_operation(operation)
    }

    /// `stored` opened; the keys are loaded again first when a value is sealed under a
    /// version newer than any loaded (another process rotated them).
    async fn open_all(
        &self,
        sealer: &Sealer<'_>,
        stored: Vec<Record>,
        operation: &'static str,
    ) -> Result<Vec<Record>> {
        let reloaded = sealer.names_newer_version(&stored)
            && self
                .keys
                .reload_throttled()
                .await
                .map_err(|e| self.attribute(e, operation))?;
        let fresh;
        let sealer = if reloaded {
            fresh = self.sealer(sealer.entity, operation)?;
            &fresh
        } else {
            sealer
        };
        stored
            .into_iter()
            .map(|r| sealer.open_record(r))
            .collect::<Result<_>>()
            .map_err(|e| self.attribute(e, operation))
    }
}

#[async_trait]
impl StoreLayer for EncryptedStore {
    fn inner(&self) -> &dyn RecordStore {
        &*self.inner
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities().with(Capability::FieldEncryption)
    }

    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        let sealer = self.sealer(entity, op::CREATE)?;
        let record = sealer
            .seal_record(record)
            .map_err(|e| self.attribute(e, op::CREATE))?;
        self.inner.insert(ctx, sealer.form, record).await
    }

    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        let sealer = self.sealer(entity, op::CREATE_MANY)?;
        let records = records
            .into_iter()
            .map(|r| sealer.seal_record(r))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| self.attribute(e, op::CREATE_MANY))?;
        self.inner.insert_many(ctx, sealer.form, records).await
    }

    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        let sealer = self.sealer(entity, op::GET)?;
        match self.inner.fetch(ctx, sealer.form, id).await? {
            Some(stored) => Ok(self.open_all(&sealer, vec![stored], op::GET).await?.pop()),
            None => Ok(None),
        }
    }

    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        let sealer = self.sealer(entity, "update")?;
        if sealer.is_plain() {
            return self.inner.update(ctx, entity, id, changes).await;
        }
        let changes = sealer
            .seal_changes(id, changes)
            .map_err(|e| self.attribute(e, "update"))?;
        self.inner.update(ctx, sealer.form, id, &changes).await
    }

    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        let sealer = self.sealer(entity, "delete")?;
        self.inner.delete(ctx, sealer.form, id).await
    }

    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        let sealer = self.sealer(entity, "list")?;
        if sealer.is_plain() {
            return self.inner.list(ctx, entity, query).await;
        }
        sealer
            .check_sort(&query.sort)
            .map_err(|e| self.attribute(e, "list"))?;
        let query = Query {
            filter: sealer
                .seal_filter(&query.filter)
                .map_err(|e| self.attribute(e, "list"))?,
            ..query.clone()
        };
        let stored = self.inner.list(ctx, sealer.form, &query).await?;
        self.open_all(&sealer, stored, "list").await
    }

    async fn count(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        let sealer = self.sealer(entity, "count")?;
        let filter = sealer
            .seal_filter(filter)
            .map_err(|e| self.attribute(e, "count"))?;
        self.inner.count(ctx, sealer.form, &filter).await
    }

    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        let sealer = self.sealer(entity, "exists")?;
        self.inner.exists(ctx, sealer.form, id).await
    }

    async fn insert_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        let sealer = self.sealer(entity, op::CREATE_WITH_TTL)?;
        let record = sealer
            .seal_record(record)
            .map_err(|e| self.attribute(e, op::CREATE_WITH_TTL))?;
        self.inner
            .insert_with_ttl(ctx, sealer.form, record, ttl)
            .await
    }

    async fn nearest(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        vector_field: &'static str,
        vector: &[f32],
        k: usize,
        prefilter: &Filter,
    ) -> Result<Vec<(Record, f32)>> {
        let sealer = self.sealer(entity, "nearest")?;
        let prefilter = sealer
            .seal_filter(prefilter)
            .map_err(|e| self.attribute(e, "nearest"))?;
        let found = self
            .inner
            .nearest(ctx, sealer.form, vector_field, vector, k, &prefilter)
            .await?;
        let (stored, scores): (Vec<Record>, Vec<f32>) = found.into_iter().unzip();
        let opened = self.open_all(&sealer, stored, "nearest").await?;
        Ok(opened.into_iter().zip(scores).collect())
    }
}
