//! The repository of one entity at the level of records: every check [`crate::Repository`]
//! makes, for callers that work from an entity's declaration rather than its Rust type (the
//! HTTP gateway, tools walking the registry). `Repository<T>` is this plus conversion to `T`.

use std::sync::Arc;
use std::time::Duration;

use crate::capability::Capability;
use crate::changes::Changes;
use crate::context::AccessContext;
use crate::cursor::Cursor;
use crate::entity::EntityMeta;
use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::op;
use crate::query::{Page, PageOf, Query, SortKey};
use crate::record::Record;
use crate::store::RecordStore;
use crate::value::{Value, ValueKind};

/// Access to the records of one entity in one store, validated against its declaration.
#[derive(Clone)]
pub struct Records {
    store: Arc<dyn RecordStore>,
    entity: &'static EntityMeta,
}

impl Records {
    /// Largest `k` a similarity search returns.
    pub const MAX_NEAREST: usize = 1000;

    /// The records of `entity` over `store`. Refused (`Config`) as
    /// [`crate::Repository::new`] refuses: an invalid declaration, PII or PHI over a store
    /// without the access policy and audit, encrypted fields over a store that does not seal.
    pub fn new(store: Arc<dyn RecordStore>, entity: &'static EntityMeta) -> Result<Self> {
        Self::audited(store, entity, "DataLayer::records")
    }

    /// As [`Records::new`]; a refusal names `reach_it_through`, the call that gives the
    /// whole stack.
    pub(crate) fn audited(
        store: Arc<dyn RecordStore>,
        entity: &'static EntityMeta,
        reach_it_through: &str,
    ) -> Result<Self> {
        if entity.is_sensitive() && !store.capabilities().supports(Capability::AccessAudit) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} holds PII or PHI, and this {} store has no access policy or \
                     audit; take it from {reach_it_through} (with [privacy] configured)",
                    entity.name,
                    store.kind()
                ),
            ));
        }
        Self::unaudited(store, entity)
    }

    /// As [`Records::new`] without requiring the access policy and audit: for tools that move
    /// stored data as it is, never for serving requests.
    pub fn unaudited(store: Arc<dyn RecordStore>, entity: &'static EntityMeta) -> Result<Self> {
        entity.validate()?;
        if entity.has_encrypted_fields()
            && !store.capabilities().supports(Capability::FieldEncryption)
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "entity {} has encrypted fields and this {} store would keep them in the \
                     clear; reach it through the privacy layer (DataLayer::repository with \
                     [privacy])",
                    entity.name,
                    store.kind()
                ),
            ));
        }
        Ok(Records { store, entity })
    }

    /// The store behind these records.
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    /// The entity these records are instances of.
    pub fn entity(&self) -> &'static EntityMeta {
        self.entity
    }

    fn require(&self, cap: Capability, operation: &'static str) -> Result<()> {
        if self.store.capabilities().supports(cap) {
            Ok(())
        } else {
            Err(Error::unsupported(self.store.kind(), operation))
        }
    }

    fn checked(&self, record: Record, operation: &'static str) -> Result<Record> {
        record
            .validate(self.entity)
            .map_err(|e| e.with_operation(operation))?;
        Ok(record)
    }

    /// Stores a new record; a duplicate id is `Conflict`.
    pub async fn create(&self, ctx: &AccessContext, record: Record) -> Result<()> {
        let record = self.checked(record, op::CREATE)?;
        self.store.insert(ctx, self.entity, record).await
    }

    /// Stores many new records, all or nothing. Returns how many were stored.
    pub async fn create_many(&self, ctx: &AccessContext, records: Vec<Record>) -> Result<u64> {
        self.require(Capability::BulkInsert, op::CREATE_MANY)?;
        let records = records
            .into_iter()
            .map(|r| self.checked(r, op::CREATE_MANY))
            .collect::<Result<Vec<_>>>()?;
        if records.is_empty() {
            return Ok(0);
        }
        self.store.insert_many(ctx, self.entity, records).await
    }

    /// Stores a new record that the store deletes by itself after `ttl`.
    pub async fn create_with_ttl(
        &self,
        ctx: &AccessContext,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        self.require(Capability::Ttl, op::CREATE_WITH_TTL)?;
        let record = self.checked(record, op::CREATE_WITH_TTL)?;
        self.store
            .insert_with_ttl(ctx, self.entity, record, ttl)
            .await
    }

    /// The record with `id`, if any.
    pub async fn get(&self, ctx: &AccessContext, id: &Value) -> Result<Option<Record>> {
        self.check_id(id, op::GET)?;
        self.store.fetch(ctx, self.entity, id).await
    }

    /// Whether a record with `id` exists.
    pub async fn exists(&self, ctx: &AccessContext, id: &Value) -> Result<bool> {
        self.check_id(id, op::GET)?;
        self.store.exists(ctx, self.entity, id).await
    }

    /// Sets the given fields of the record with `id`: `Ok(false)` when there is no such
    /// record, `Conflict` when [`Changes::expect_version`] no longer matches.
    pub async fn update(&self, ctx: &AccessContext, id: &Value, changes: Changes) -> Result<bool> {
        self.check_id(id, op::UPDATE)?;
        let changes = changes
            .validate(self.entity)
            .map_err(|e| e.with_operation(op::UPDATE))?;
        let matched = self.store.update(ctx, self.entity, id, &changes).await?;
        // A store matches on id and expected version together; if nothing matched although
        // the record exists, the version was stale.
        if !matched
            && changes.expected_version.is_some()
            && self.store.exists(ctx, self.entity, id).await?
        {
            return Err(Error::stale_version(self.store.kind(), self.entity.name));
        }
        Ok(matched)
    }

    /// Deletes the record with `id`; `Ok(false)` when there was none.
    pub async fn delete(&self, ctx: &AccessContext, id: &Value) -> Result<bool> {
        self.check_id(id, op::DELETE)?;
        self.store.delete(ctx, self.entity, id).await
    }

    /// Number of records matching `filter`.
    pub async fn count(&self, ctx: &AccessContext, filter: &Filter) -> Result<u64> {
        self.require(Capability::Count, op::COUNT)?;
        self.check_filter(filter, op::COUNT)?;
        self.store.count(ctx, self.entity, filter).await
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
    ) -> Result<PageOf<Record>> {
        self.check_filter(filter, op::LIST)?;
        let meta = self.entity;
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
        let mut items = self.store.list(ctx, meta, &query).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| Cursor::after(last, &query.sort))
        } else {
            None
        };
        Ok(PageOf { items, next })
    }

    /// The `k` records matching `prefilter` whose vector field `field` is most similar
    /// (cosine) to `vector`, most similar first, each with its similarity.
    pub async fn nearest(
        &self,
        ctx: &AccessContext,
        field: &str,
        vector: &[f32],
        k: usize,
        prefilter: &Filter,
    ) -> Result<Vec<(Record, f32)>> {
        self.require(Capability::VectorSearch, op::NEAREST)?;
        let meta = self.entity;
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
        self.store
            .nearest(ctx, meta, f.name, vector, k, prefilter)
            .await
    }

    /// An id of the id field's kind (typed callers cannot pass another; untyped ones can).
    fn check_id(&self, id: &Value, operation: &'static str) -> Result<()> {
        let field = self.entity.id();
        if id.kind() == Some(field.kind) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "entity {}: id {} expects {:?}",
            self.entity.name, field.name, field.kind
        ))
        .with_operation(operation))
    }

    fn check_filter(&self, filter: &Filter, operation: &'static str) -> Result<()> {
        filter
            .validate(self.entity)
            .map_err(|e| e.with_operation(operation))?;
        if filter.uses_prefix() {
            self.require(Capability::PrefixFilter, "prefix filter")?;
        }
        Ok(())
    }
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
