//! Records hidden from every read without being deleted: a field of udl's own (`_udl_hidden_by`,
//! naming why) that every read path leaves out, on every server. The media-rights prune hides
//! what cites an asset whose license ended, for the asset's grace period, before deleting it
//! (or showing it again, should the license be renewed). Writing the field is an update like
//! any other, so caches following the collection's changes evict the record in every process.
//!
//! These calls go around the access policy and the audit layer (they read no field of the
//! records they touch, only match them by a filter): for maintenance jobs, and named so.

use mongodb::bson::{doc, Document, RawDocument};
use udl_core::{EntityMeta, Filter, Result};

use crate::error::classify;
use crate::store::MongoStore;

/// The field marking a hidden document (never an entity's: `_udl` is reserved).
pub const HIDDEN_BY: &str = "_udl_hidden_by";

/// `filter`, restricted to documents that are not hidden.
pub fn visible(mut filter: Document) -> Document {
    filter.insert(HIDDEN_BY, doc! { "$exists": false });
    filter
}

/// Whether `doc` (as the server sent it) is hidden.
pub fn is_hidden(doc: &RawDocument) -> bool {
    doc.get(HIDDEN_BY).ok().flatten().is_some()
}

impl MongoStore {
    /// Hides every record of `entity` matching `filter` that is not hidden yet, marking it with
    /// `reason`; how many it hid. Bypasses the access policy and audit.
    pub async fn hide_matching_unaudited(
        &self,
        entity: &'static EntityMeta,
        filter: &Filter,
        reason: &str,
    ) -> Result<u64> {
        let query = visible(crate::filter::query(entity, filter)?);
        let updated = self
            .database()
            .collection::<Document>(entity.name)
            .update_many(query, doc! { "$set": { HIDDEN_BY: reason } })
            .await
            .map_err(|e| classify(&e, "hide"))?;
        Ok(updated.modified_count)
    }

    /// Shows again every record of `entity` hidden with `reason`; how many. Bypasses the access
    /// policy and audit.
    pub async fn unhide_unaudited(&self, entity: &'static EntityMeta, reason: &str) -> Result<u64> {
        let updated = self
            .database()
            .collection::<Document>(entity.name)
            .update_many(
                doc! { HIDDEN_BY: reason },
                doc! { "$unset": { HIDDEN_BY: "" } },
            )
            .await
            .map_err(|e| classify(&e, "unhide"))?;
        Ok(updated.modified_count)
    }

    /// Deletes every record of `entity` matching `filter`, hidden or not; how many. Bypasses
    /// the access policy and audit (the caller records a deletion receipt).
    pub async fn delete_matching_unaudited(
        &self,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        let query = crate::filter::query(entity, filter)?;
        let deleted = self
            .database()
            .collection::<Document>(entity.name)
            .delete_many(query)
            .await
            .map_err(|e| classify(&e, "delete"))?;
        Ok(deleted.deleted_count)
    }

    /// How many records of `entity` match `filter`, hidden or not. Bypasses the access policy
    /// and audit (it reads no field).
    pub async fn count_matching_unaudited(
        &self,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        let query = crate::filter::query(entity, filter)?;
        self.database()
            .collection::<Document>(entity.name)
            .count_documents(query)
            .await
            .map_err(|e| classify(&e, "count"))
    }
}
