//! Entities kept for a retention period counted from a time field of their own (a patient's
//! interaction logs: `occurred_at`): each document written through udl carries its expiry in
//! `_udl_expires_at` (the field `create_with_ttl` uses), so the server's TTL index deletes it and
//! every read leaves it out from that instant, on every server (FerretDB has no TTL monitor: the
//! retention purge deletes there). A legal hold renames the field out of the TTL index's reach
//! (`_udl_held_expires_at`) and back once released.
//!
//! The calls on [`MongoStore`] here go around the access policy and the audit layer (they match
//! records by a filter and read no field): for the retention job, and named so.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use mongodb::bson::{doc, Bson, DateTime, Document};
use udl_core::{EntityMeta, Filter, Result};

use crate::error::classify;
use crate::expiry::EXPIRES_AT;
use crate::store::MongoStore;

/// Where a held document keeps its expiry, out of the TTL index's reach.
pub const HELD_EXPIRES_AT: &str = "_udl_held_expires_at";

/// One retained entity: its time field and how long from it a document is kept.
#[derive(Clone, Copy, Debug)]
struct Kept {
    field: &'static str,
    keep: Duration,
}

/// The retained entities, by name.
#[derive(Default)]
pub(crate) struct Retained(RwLock<HashMap<&'static str, Kept>>);

impl Retained {
    pub(crate) fn add(&self, entity: &'static EntityMeta, field: &'static str, keep: Duration) {
        if let Ok(mut kept) = self.0.write() {
            kept.insert(entity.name, Kept { field, keep });
        }
    }

    /// Whether documents of `entity` carry a retention expiry.
    pub(crate) fn covers(&self, entity: &EntityMeta) -> bool {
        self.0.read().is_ok_and(|k| k.contains_key(entity.name))
    }

    /// Sets the expiry of `doc` (of `entity`) from its time field, when `entity` is retained.
    pub(crate) fn stamp(&self, entity: &EntityMeta, doc: &mut Document) {
        let Some(kept) = self.0.read().ok().and_then(|k| k.get(entity.name).copied()) else {
            return;
        };
        if let Some(Bson::DateTime(at)) = doc.get(kept.field) {
            let keep = i64::try_from(kept.keep.as_millis()).unwrap_or(i64::MAX);
            let expires = DateTime::from_millis(at.timestamp_millis().saturating_add(keep));
            doc.insert(EXPIRES_AT, expires);
        }
    }
}

impl MongoStore {
    /// Keeps documents of `entity` for `keep` from their `field` (a date): written with that
    /// expiry, left out of every read from then, deleted by the server's TTL monitor.
    pub fn keeping(self, entity: &'static EntityMeta, field: &'static str, keep: Duration) -> Self {
        self.retained().add(entity, field, keep);
        self
    }

    /// Deletes the documents of `entity` whose retention ended at or before `now`; how many.
    /// Bypasses the access policy and audit.
    pub async fn purge_expired_unaudited(
        &self,
        entity: &'static EntityMeta,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        let deleted = self
            .database()
            .collection::<Document>(entity.name)
            .delete_many(
                doc! { EXPIRES_AT: { "$lte": DateTime::from_millis(now.timestamp_millis()) } },
            )
            .await
            .map_err(|e| classify(&e, "retention purge"))?;
        Ok(deleted.deleted_count)
    }

    /// Suspends the expiry of every document of `entity` matching `filter` (a legal hold);
    /// how many. Bypasses the access policy and audit.
    pub async fn suspend_expiry_unaudited(
        &self,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        self.rename_expiry(entity, filter, EXPIRES_AT, HELD_EXPIRES_AT)
            .await
    }

    /// Resumes the expiry of every document of `entity` matching `filter` whose expiry a hold
    /// suspended; how many. Bypasses the access policy and audit.
    pub async fn resume_expiry_unaudited(
        &self,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        self.rename_expiry(entity, filter, HELD_EXPIRES_AT, EXPIRES_AT)
            .await
    }

    /// How many documents of `entity` have a retention that ended at or before `now`.
    pub async fn count_expired_unaudited(
        &self,
        entity: &'static EntityMeta,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.count_due(entity, EXPIRES_AT, now).await
    }

    /// How many documents of `entity` a hold keeps although their retention ended by `now`.
    pub async fn count_held_expired_unaudited(
        &self,
        entity: &'static EntityMeta,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.count_due(entity, HELD_EXPIRES_AT, now).await
    }

    /// How many documents of `entity` hold in `field` an instant at or before `now`.
    async fn count_due(
        &self,
        entity: &'static EntityMeta,
        field: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.database()
            .collection::<Document>(entity.name)
            .count_documents(
                doc! { field: { "$lte": DateTime::from_millis(now.timestamp_millis()) } },
            )
            .await
            .map_err(|e| classify(&e, "retention purge"))
    }

    async fn rename_expiry(
        &self,
        entity: &'static EntityMeta,
        filter: &Filter,
        from: &str,
        to: &str,
    ) -> Result<u64> {
        let mut query = crate::filter::query(entity, filter)?;
        query.insert(from, doc! { "$exists": true });
        let updated = self
            .database()
            .collection::<Document>(entity.name)
            .update_many(query, doc! { "$rename": { from: to } })
            .await
            .map_err(|e| classify(&e, "legal hold"))?;
        Ok(updated.modified_count)
    }
}
