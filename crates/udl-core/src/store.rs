//! The record-level contract every backend implements.

use crate::op;
use std::time::Duration;

use async_trait::async_trait;

use crate::capability::Capabilities;
use crate::changes::ValidChanges;
use crate::context::AccessContext;
use crate::entity::EntityMeta;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::query::Query;
use crate::record::Record;
use crate::store_kind::StoreKind;
use crate::value::Value;

/// A backend as the generic layer sees it: records described by entity metadata.
///
/// Inputs arrive validated by [`crate::Repository`] (known fields, matching kinds), but a
/// backend still takes every identifier from `entity`, never from the caller. Operations a
/// backend cannot do keep the default body, which refuses with `Unsupported`.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Which store this is.
    fn kind(&self) -> StoreKind;

    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Inserts one record; a duplicate id is `Conflict`.
    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()>;

    /// Inserts many records all-or-nothing; returns how many were written.
    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64>;

    /// Reads one record by id.
    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>>;

    /// Applies changes to the record with this id and, when the changes carry an expected
    /// version, that version; `Ok(false)` when no record matched. ([`crate::Repository`]
    /// turns a miss on an existing record into a `Conflict`.)
    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool>;

    /// Deletes one record; `Ok(false)` when no record has that id.
    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool>;

    /// Records matching the query's filter, in its order, within its limit and offset.
    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>>;

    /// Number of records matching the filter.
    async fn count(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64>;

    /// Whether a record with this id exists.
    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool>;

    /// Inserts a record that the store removes by itself after `ttl`.
    async fn insert_with_ttl(
        &self,
        _ctx: &AccessContext,
        _entity: &'static EntityMeta,
        _record: Record,
        _ttl: Duration,
    ) -> Result<()> {
        Err(Error::unsupported(self.kind(), op::CREATE_WITH_TTL))
    }

    /// The `k` records matching `prefilter` whose vector field is most similar (cosine) to
    /// `vector`, most similar first, with their similarity in [-1, 1].
    async fn nearest(
        &self,
        _ctx: &AccessContext,
        _entity: &'static EntityMeta,
        _vector_field: &'static str,
        _vector: &[f32],
        _k: usize,
        _prefilter: &Filter,
    ) -> Result<Vec<(Record, f32)>> {
        Err(Error::unsupported(self.kind(), "nearest"))
    }
}
