//! The forwarding base for record-store layers (privacy, cache, resilience, test doubles): a
//! layer implements [`StoreLayer`], names its inner store, and overrides only the operations it
//! changes; every [`StoreLayer`] is a [`RecordStore`] whose other operations go to the inner
//! store unchanged. Call a layer through `RecordStore` (usually as an `Arc<dyn RecordStore>`):
//! both traits name the operations, so a method call on the concrete type would be ambiguous.
//!
//! Every layer is built the same way: `Layer::new(inner, what it needs) -> Arc<Layer>`
//! (`ResilientStore`, `EncryptedStore`, `AuditedStore`; the cache's is async and fallible, as it
//! subscribes to invalidations first).

use std::time::Duration;

use async_trait::async_trait;

use crate::capability::Capabilities;
use crate::changes::ValidChanges;
use crate::context::AccessContext;
use crate::entity::EntityMeta;
use crate::error::Result;
use crate::filter::Filter;
use crate::query::Query;
use crate::record::Record;
use crate::store::RecordStore;
use crate::store_kind::StoreKind;
use crate::value::Value;

/// A record store wrapped around another. Each method's default hands the call to
/// [`StoreLayer::inner`] as it is; see [`RecordStore`] for what each operation does.
#[async_trait]
#[allow(missing_docs)] // the operations are documented on `RecordStore`
pub trait StoreLayer: Send + Sync + 'static {
    /// The store this layer wraps.
    fn inner(&self) -> &dyn RecordStore;

    fn kind(&self) -> StoreKind {
        self.inner().kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner().capabilities()
    }

    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        self.inner().insert(ctx, entity, record).await
    }

    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        self.inner().insert_many(ctx, entity, records).await
    }

    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        self.inner().fetch(ctx, entity, id).await
    }

    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        self.inner().update(ctx, entity, id, changes).await
    }

    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        self.inner().delete(ctx, entity, id).await
    }

    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        self.inner().list(ctx, entity, query).await
    }

    async fn count(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        self.inner().count(ctx, entity, filter).await
    }

    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        self.inner().exists(ctx, entity, id).await
    }

    async fn insert_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        self.inner().insert_with_ttl(ctx, entity, record, ttl).await
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
        self.inner()
            .nearest(ctx, entity, vector_field, vector, k, prefilter)
            .await
    }
}

#[async_trait]
impl<L: StoreLayer> RecordStore for L {
    fn kind(&self) -> StoreKind {
        StoreLayer::kind(self)
    }

    fn capabilities(&self) -> Capabilities {
        StoreLayer::capabilities(self)
    }

    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        StoreLayer::insert(self, ctx, entity, record).await
    }

    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        StoreLayer::insert_many(self, ctx, entity, records).await
    }

    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        StoreLayer::fetch(self, ctx, entity, id).await
    }

    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        StoreLayer::update(self, ctx, entity, id, changes).await
    }

    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        StoreLayer::delete(self, ctx, entity, id).await
    }

    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        StoreLayer::list(self, ctx, entity, query).await
    }

    async fn count(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        StoreLayer::count(self, ctx, entity, filter).await
    }

    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        StoreLayer::exists(self, ctx, entity, id).await
    }

    async fn insert_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        StoreLayer::insert_with_ttl(self, ctx, entity, record, ttl).await
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
        StoreLayer::nearest(self, ctx, entity, vector_field, vector, k, prefilter).await
    }
}
