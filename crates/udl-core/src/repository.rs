//! The typed repository, written once over any [`RecordStore`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::changes::Changes;
use crate::context::AccessContext;
use crate::entity::Entity;
use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::op;
use crate::query::{Page, PageOf, SortKey};
use crate::record::Record;
use crate::records::Records;
use crate::store::RecordStore;
use crate::value::FieldValue;

/// Typed access to the records of entity `T` in one store.
///
/// Every call takes an [`AccessContext`]; input is validated against `T`'s declaration
/// before it reaches the store, and operations the store cannot do are refused with
/// `Unsupported` before anything is sent. The checks are [`Records`]'; this adds `T`.
pub struct Repository<T> {
    records: Records,
    _entity: PhantomData<fn() -> T>,
}

impl<T> Clone for Repository<T> {
    fn clone(&self) -> Self {
        Repository {
            records: self.records.clone(),
            _entity: PhantomData,
        }
    }
}

impl<T: Entity> Repository<T> {
    /// Repository of `T` over `store`. Fails with `Config` if `T`'s declaration is invalid
    /// (for example a PHI-bearing entity with an unclassified field), if `T` holds PII or PHI
    /// and `store` lacks the access policy and audit ([`crate::Capability::AccessAudit`]: take it from
    /// `DataLayer::repository`), or if `T` has encrypted fields and `store` would keep them in
    /// the clear (it lacks [`crate::Capability::FieldEncryption`]).
    pub fn new(store: Arc<dyn RecordStore>) -> Result<Self> {
        let reach_it_through = format!("DataLayer::repository::<{}>()", short_type_name::<T>());
        Ok(Repository {
            records: Records::audited(store, T::meta(), &reach_it_through)?,
            _entity: PhantomData,
        })
    }

    /// Repository of `T` over `store` even when `T` holds PII or PHI and `store` neither
    /// checks the access policy nor audits: for tools that move stored data as it is (key
    /// rotation, audit verification), never for serving requests. Declarations are still
    /// validated and encrypted fields still need a store that seals them.
    pub fn unaudited(store: Arc<dyn RecordStore>) -> Result<Self> {
        Ok(Repository {
            records: Records::unaudited(store, T::meta())?,
            _entity: PhantomData,
        })
    }

    /// The store behind this repository.
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        self.records.store()
    }

    /// The same access without `T`: records in and out.
    pub fn records(&self) -> &Records {
        &self.records
    }

    fn record_of(entity: T, operation: &'static str) -> Result<Record> {
        let record = entity.into_record();
        record
            .validate(T::meta())
            .map_err(|e| e.with_operation(operation))?;
        Ok(record)
    }

    fn typed(&self, record: Record, operation: &'static str) -> Result<T> {
        T::from_record(record)
            .map_err(|e| e.with_store(self.store().kind()).with_operation(operation))
    }

    /// Stores a new record; a duplicate id is `Conflict`. Returns the id.
    pub async fn create(&self, ctx: &AccessContext, entity: T) -> Result<T::Id> {
        let id = entity.id();
        let record = Self::record_of(entity, op::CREATE)?;
        self.records.create(ctx, record).await?;
        Ok(id)
    }

    /// Stores many new records, all or nothing. Returns how many were stored.
    pub async fn create_many(&self, ctx: &AccessContext, entities: Vec<T>) -> Result<u64> {
        let records = entities
            .into_iter()
            .map(|e| Self::record_of(e, op::CREATE_MANY))
            .collect::<Result<Vec<_>>>()?;
        self.records.create_many(ctx, records).await
    }

    /// Stores a new record that the store deletes by itself after `ttl`.
    pub async fn create_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: T,
        ttl: Duration,
    ) -> Result<T::Id> {
        let id = entity.id();
        let record = Self::record_of(entity, op::CREATE_WITH_TTL)?;
        self.records.create_with_ttl(ctx, record, ttl).await?;
        Ok(id)
    }

    /// The record with `id`, if any.
    pub async fn get(&self, ctx: &AccessContext, id: &T::Id) -> Result<Option<T>> {
        let id = id.clone().into_value();
        match self.records.get(ctx, &id).await? {
            Some(record) => self.typed(record, op::GET).map(Some),
            None => Ok(None),
        }
    }

    /// The record with `id`, or `NotFound`.
    pub async fn get_required(&self, ctx: &AccessContext, id: &T::Id) -> Result<T> {
        self.get(ctx, id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no {} with that id", T::meta().name),
            )
            .with_store(self.store().kind())
            .with_operation(op::GET)
        })
    }

    /// Whether a record with `id` exists.
    pub async fn exists(&self, ctx: &AccessContext, id: &T::Id) -> Result<bool> {
        self.records.exists(ctx, &id.clone().into_value()).await
    }

    /// Sets the given fields of the record with `id`. `Ok(false)` when there is no such
    /// record; `Conflict` when [`Changes::expect_version`] no longer matches. The version
    /// field, if the entity has one, is incremented by every update.
    pub async fn update(&self, ctx: &AccessContext, id: &T::Id, changes: Changes) -> Result<bool> {
        let id = id.clone().into_value();
        self.records.update(ctx, &id, changes).await
    }

    /// Deletes the record with `id`; `Ok(false)` when there was none.
    pub async fn delete(&self, ctx: &AccessContext, id: &T::Id) -> Result<bool> {
        self.records.delete(ctx, &id.clone().into_value()).await
    }

    /// Number of records matching `filter`.
    pub async fn count(&self, ctx: &AccessContext, filter: &Filter) -> Result<u64> {
        self.records.count(ctx, filter).await
    }

    /// One page of records matching `filter` in `sort` order (empty: the clustering key's
    /// order, if the entity declares one). The id field is appended to the sort as a
    /// tie-breaker, so pages never overlap or skip records.
    pub async fn list(
        &self,
        ctx: &AccessContext,
        filter: &Filter,
        sort: &[SortKey],
        page: Page,
    ) -> Result<PageOf<T>> {
        let page = self.records.list(ctx, filter, sort, page).await?;
        let items = page
            .items
            .into_iter()
            .map(|r| self.typed(r, op::LIST))
            .collect::<Result<Vec<_>>>()?;
        Ok(PageOf {
            items,
            next: page.next,
        })
    }

    /// Largest `k` a similarity search returns.
    pub const MAX_NEAREST: usize = Records::MAX_NEAREST;

    /// The `k` records matching `prefilter` whose vector field `field` is most similar
    /// (cosine) to `vector`, most similar first, each with its similarity.
    pub async fn nearest(
        &self,
        ctx: &AccessContext,
        field: &str,
        vector: &[f32],
        k: usize,
        prefilter: &Filter,
    ) -> Result<Vec<(T, f32)>> {
        let found = self
            .records
            .nearest(ctx, field, vector, k, prefilter)
            .await?;
        found
            .into_iter()
            .map(|(record, score)| self.typed(record, op::NEAREST).map(|t| (t, score)))
            .collect()
    }
}

/// `T`'s name without its module path, for messages.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}
