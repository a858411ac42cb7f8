//! The typed repository, written once over any [`RecordStore`].

use crate::op;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::capability::Capability;
use crate::changes::Changes;
use crate::context::AccessContext;
use crate::cursor::Cursor;
use crate::entity::{Entity, EntityMeta};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::query::{Page, PageOf, Query, SortKey};
use crate::record::Record;
use crate::store::RecordStore;
use crate::value::{FieldValue, ValueKind};

/// Typed access to the records of entity `T` in one store.
///
/// Every call takes an [`AccessContext`]; input is validated against `T`'s declaration
/// before it reaches the store, and operations the store cannot do are refused with
/// `Unsupported` before anything is sent.
pub struct Repository<T> {
    store: Arc<dyn RecordStore>,
    _entity: PhantomData<fn() -> T>,
}

impl<T> Clone for Repository<T> {
    fn clone(&self) -> Self {
        Repository {
            store: Arc::clone(&self.store),
            _entity: PhantomData,
        }
    }
}

impl<T: Entity> Repository<T> {
    /// Repository of `T` over `store`. Fails with `Config` if `T`'s declaration is invalid
    /// (for example a PHI-bearing entity with an unclassified field), if `T` holds PII or PHI
    /// and `store` lacks the access policy and audit ([`Capability::AccessAudit`]: take it from
    /// `DataLayer::repository`), or if `T` has encrypted fields and `store` would keep them in
    /// the clear (it lacks [`Capability::FieldEncryption`]).
    pub fn new(store: Arc<dyn RecordStore>) -> Result<Self> {
        let meta = T::meta();
        if meta.is_sensitive() && !store.capabilities().supports(Capability::AccessAudit) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} holds PII or PHI, and this {} store has no access policy or \
                     audit; take its repository from DataLayer::repository::<{}>() (with \
                     [privacy] configured)",
                    meta.name,
                    store.kind(),
                    short_type_name::<T>()
                ),
            ));
        }
        Self::unaudited(store)
    }

    /// Repository of `T` over `store` even when `T` holds PII or PHI and `store` neither
    /// checks the access policy nor audits: for tools that move stored data as it is (key
    /// rotation, audit verification), never for serving requests. Declarations are still
    /// validated and encrypted fields still need a store that seals them.
    pub fn unaudited(store: Arc<dyn RecordStore>) -> Result<Self> {
        let meta = T::meta();
        meta.validate()?;
        if meta.has_encrypted_fields()
            && !store.capabilities().supports(Capability::FieldEncryption)
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} has encrypted fields and this {} store would keep them in the \
                     clear; reach it through the privacy layer (DataLayer::repository with \
                     [privacy])",
                    meta.name,
                    store.kind()
                ),
            ));
        }
        Ok(Repository {
            store,
            _entity: PhantomData,
        })
    }

    /// The store behind this repository.
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    fn meta() -> &'static EntityMeta {
        T::meta()
    }

    fn require(&self, cap: Capability, operation: &'static str) -> Result<()> {
        if self.store.capabilities().supports(cap) {
            Ok(())
        } else {
            Err(Error::unsupported(self.store.kind(), operation))
        }
    }

    fn record_of(entity: T) -> Result<Record> {
        let record = entity.into_record();
        record.validate(Self::meta())?;
        Ok(record)
    }

    /// Stores a new record; a duplicate id is `Conflict`. Returns the id.
    pub async fn create(&self, ctx: &AccessContext, entity: T) -> Result<T::Id> {
        let id = entity.id();
        let record = Self::record_of(entity).map_err(|e| e.with_operation(op::CREATE))?;
        self.store.insert(ctx, Self::meta(), record).await?;
        Ok(id)
    }

    /// Stores many new records, all or nothing. Returns how many were stored.
    pub async fn create_many(&self, ctx: &AccessContext, entities: Vec<T>) -> Result<u64> {
        self.require(Capability::BulkInsert, op::CREATE_MANY)?;
        let records = entities
            .into_iter()
            .map(Self::record_of)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.with_operation(op::CREATE_MANY))?;
        if records.is_empty() {
            return Ok(0);
        }
        self.store.insert_many(ctx, Self::meta(), records).await
    }

    /// Stores a new record that the store deletes by itself after `ttl`.
    pub async fn create_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: T,
        ttl: Duration,
    ) -> Result<T::Id> {
        self.require(Capability::Ttl, op::CREATE_WITH_TTL)?;
        let id = entity.id();
        let record = Self::record_of(entity).map_err(|e| e.with_operation(op::CREATE_WITH_TTL))?;
        self.store
            .insert_with_ttl(ctx, Self::meta(), record, ttl)
            .await?;
        Ok(id)
    }

    /// The record with `id`, if any.
    pub async fn get(&self, ctx: &AccessContext, id: &T::Id) -> Result<Option<T>> {
        let id = id.clone().into_value();
        match self.store.fetch(ctx, Self::meta(), &id).await? {
            Some(record) => T::from_record(record)
                .map(Some)
                .map_err(|e| e.with_store(self.store.kind()).with_operation(op::GET)),
            None => Ok(None),
        }
    }

    /// The record with `id`, or `NotFound`.
    pub async fn get_required(&self, ctx: &AccessContext, id: &T::Id) -> Result<T> {
        self.get(ctx, id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no {} with that id", Self::meta().name),
            )
            .with_store(self.store.kind())
            .with_operation(op::GET)
        })
    }

    /// Whether a record with `id` exists.
    pub async fn exists(&self, ctx: &AccessContext, id: &T::Id) -> Result<bool> {
        let id = id.clone().into_value();
        self.store.exists(ctx, Self::meta(), &id).await
    }

    /// Sets the given fields of the record with `id`. `Ok(false)` when there is no such
    /// record; `Conflict` when [`Changes::expect_version`] no longer matches. The version
    /// field, if the entity has one, is incremented by every update.
    pub async fn update(&self, ctx: &AccessContext, id: &T::Id, changes: Changes) -> Result<bool> {
        let changes = changes
            .validate(Self::meta())
            .map_err(|e| e.with_operation(op::UPDATE))?;
        let id = id.clone().into_value();
        let matched = self.store.update(ctx, Self::meta(), &id, &changes).await?;
        // A store matches on id and expected version together; if nothing matched although
        // the record exists, the version was stale.
        if !matched
            && changes.expected_version.is_some()
            && self.store.exists(ctx, Self::meta(), &id).await?
        {
            return Err(Error::stale_version(self.store.kind(), Self::meta().name));
        }
        Ok(matched)
    }

    /// Deletes the record with `id`; `Ok(false)` when there was none.
    pub async fn delete(&self, ctx: &AccessContext, id: &T::Id) -> Result<bool> {
        let id = id.clone().into_value();
        self.store.delete(ctx, Self::meta(), &id).await
    }

    /// Number of records matching `filter`.
    pub async fn count(&self, ctx: &AccessContext, filter: &Filter) -> Result<u64> {
        self.require(Capability::Count, op::COUNT)?;
        self.check_filter(filter, op::COUNT)?;
        self.store.count(ctx, Self::meta(), filter).await
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
        self.check_filter(filter, op::LIST)?;
        let meta = Self::meta();
        let limit = page.limit();
        if limit == 0 || limit > Page::MAX_LIMIT {
            return Err(Error::invalid(format!(
                "page limit must be between 1 and {}",
                Page::MAX_LIMIT
            ))
            .with_operation(op::LIST));
        }
        let sort = full_sort(meta, sort).map_err(|e| e.with_operation(op::LIST))?;
        let (filter, offset) = match &page {
            Page::First { .. } => (filter.clone(), 0),
            Page::Offset { offset, .. } => {
                self.require(Capability::OffsetPagination, "list with offset")?;
                (filter.clone(), *offset)
            }
            Page::After { cursor, .. } => {
                let resume = cursor
                    .resume_filter(meta, &sort)
                    .map_err(|e| e.with_operation(op::LIST))?;
                (filter.clone().and(resume), 0)
            }
        };
        let query = Query {
            filter,
            sort,
            // One extra record tells whether another page follows.
            limit: limit + 1,
            offset,
        };
        let mut records = self.store.list(ctx, meta, &query).await?;
        let next = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|last| Cursor::after(last, &query.sort))
        } else {
            None
        };
        let items = records
            .into_iter()
            .map(T::from_record)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.with_store(self.store.kind()).with_operation(op::LIST))?;
        Ok(PageOf { items, next })
    }

    /// Largest `k` a similarity search returns.
    pub const MAX_NEAREST: usize = 1000;

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
        self.require(Capability::VectorSearch, op::NEAREST)?;
        let meta = Self::meta();
        let f = meta
            .require_field(field)
            .map_err(|e| e.with_operation(op::NEAREST))?;
        let invalid = |m: String| Err(Error::invalid(m).with_operation(op::NEAREST));
        if f.kind != ValueKind::Vector {
            return invalid(format!(
                "entity {}: field {} is not a vector",
                meta.name, f.name
            ));
        }
        if k == 0 || k > Self::MAX_NEAREST {
            return invalid(format!("k must be between 1 and {}", Self::MAX_NEAREST));
        }
        if vector.is_empty()
            || vector.iter().any(|x| !x.is_finite())
            || vector.iter().all(|x| *x == 0.0)
        {
            return invalid("query vector must be non-empty, finite and not all zero".into());
        }
        self.check_filter(prefilter, op::NEAREST)?;
        let found = self
            .store
            .nearest(ctx, meta, f.name, vector, k, prefilter)
            .await?;
        found
            .into_iter()
            .map(|(record, score)| T::from_record(record).map(|t| (t, score)))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.with_store(self.store.kind()).with_operation(op::NEAREST))
    }

    fn check_filter(&self, filter: &Filter, operation: &'static str) -> Result<()> {
        filter
            .validate(Self::meta())
            .map_err(|e| e.with_operation(operation))?;
        if filter.uses_prefix() {
            self.require(Capability::PrefixFilter, "prefix filter")?;
        }
        Ok(())
    }
}

/// `T`'s name without its module path, for messages.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// The caller's sort, checked, with the id appended as the final tie-breaker.
fn full_sort(meta: &EntityMeta, sort: &[SortKey]) -> Result<Vec<SortKey>> {
    // Without a requested order, an entity with a clustering key comes in that (its natural) order.
    let natural: Vec<SortKey>;
    let sort = if sort.is_empty() {
        natural = meta
            .clustering_key
            .iter()
            .map(|c| SortKey::asc(*c))
            .collect();
        &natural
    } else {
        sort
    };
    let mut out = Vec::with_capacity(sort.len() + 1);
    for key in sort {
        let field = meta.require_field(&key.field)?;
        if matches!(field.kind, ValueKind::Json | ValueKind::Vector) {
            return Err(Error::invalid(format!(
                "entity {}: cannot sort on JSON or vector field {}",
                meta.name, field.name
            )));
        }
        if out.iter().any(|k: &SortKey| k.field == field.name) {
            return Err(Error::invalid(format!(
                "entity {}: field {} sorted twice",
                meta.name, field.name
            )));
        }
        out.push(SortKey {
            field: field.name.to_owned(),
            direction: key.direction,
        });
    }
    if !out.iter().any(|k| k.field == meta.id_field) {
        out.push(SortKey::asc(meta.id_field));
    }
    Ok(out)
}
