//! The in-process indexes of one store, one per (collection, vector field): opened once on
//! first use (concurrent first searches share one opening), kept current by this process's
//! writes at once and, where the server has change streams, by every other client's through
//! the collection's change feed. With a save directory, an index is saved after it is built
//! and when the store shuts down, and opened from there on first use, then brought up to date
//! from the feed position it was saved at.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use tokio::sync::OnceCell;
use udl_core::{EntityMeta, ErrorKind, Record, Result, Sensitivity, Value, ValueKind};

use super::follow::Follower;
use super::{fail, lock, persist, stored_vector, VectorIndex, OP};
use crate::changes::{self, ChangeFeed, ResumePoint};
use crate::convert::doc_key;
use crate::error::classify;
use crate::MongoConfig;

type Slot = Arc<OnceCell<Arc<VectorIndex>>>;
type Built = Mutex<HashMap<(&'static str, &'static str), Slot>>;

/// Indexes by (collection, field).
#[derive(Default)]
pub struct VectorIndexes {
    built: Arc<Built>,
    /// The server has change streams: indexes follow their collection's feed.
    follow_changes: bool,
    /// Where indexes are saved, if anywhere (only with change streams: a saved index
    /// could not otherwise learn what changed while it was closed).
    save_dir: Option<PathBuf>,
    /// Whether indexes of PII or PHI fields are saved too (their vectors in the clear).
    save_sensitive: bool,
    /// Fields whose indexes are not saved because of their classification.
    unsaved: Mutex<HashSet<(&'static str, &'static str)>>,
    /// Up to this many vectors a built index is a quantized scan, above it a graph.
    scan_limit: usize,
    followers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for VectorIndexes {
    fn drop(&mut self) {
        self.stop_following();
    }
}

/// What one in-process vector index holds, for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorIndexStatus {
    /// The collection (entity name).
    pub collection: &'static str,
    /// The vector field.
    pub field: &'static str,
    /// Live vectors.
    pub vectors: usize,
    /// Points of replaced or removed vectors still in the index.
    pub tombstones: usize,
    /// Opened from `mongo.vector_index_dir` rather than built from the collection.
    pub opened_from_save: bool,
    /// An HNSW graph (else a quantized scan, see [`crate::SCAN_LIMIT`]).
    pub graph: bool,
    /// Candidates a graph search explores (calibrated at build).
    pub ef: usize,
}

/// The index key of a document id (its relaxed extended JSON), and back.
pub fn key_of(id: &Bson) -> String {
    id.clone().into_relaxed_extjson().to_string()
}

/// The document id of an index key.
pub fn id_of(key: &str) -> Option<Bson> {
    let json: serde_json::Value = serde_json::from_str(key).ok()?;
    Bson::try_from(json).ok()
}

impl VectorIndexes {
    /// Indexes following their collections' change feeds when `follow_changes`, saved in
    /// `mongo.vector_index_dir` when given (and following), scans up to
    /// `mongo.vector_scan_limit` vectors.
    pub(crate) fn new(follow_changes: bool, config: &MongoConfig) -> Self {
        VectorIndexes {
            scan_limit: config.vector_scan_limit,
            built: Arc::default(),
            follow_changes,
            save_dir: config.vector_index_dir.clone().filter(|_| follow_changes),
            save_sensitive: config.vector_index_save_phi_in_clear,
            unsaved: Mutex::default(),
            followers: Mutex::default(),
        }
    }

    fn stop_following(&self) {
        for follower in lock(&self.followers).drain(..) {
            follower.abort();
        }
    }

    fn slot(&self, collection: &'static str, field: &'static str) -> Slot {
        Arc::clone(lock(&self.built).entry((collection, field)).or_default())
    }

    /// The index of `collection`'s `field`, if it has been built.
    pub(crate) fn existing(
        &self,
        collection: &'static str,
        field: &'static str,
    ) -> Option<Arc<VectorIndex>> {
        lock(&self.built)
            .get(&(collection, field))
            .and_then(|slot| slot.get().cloned())
    }

    /// Whether any vector field of `entity` has a built index that writes must keep current.
    pub fn tracks(&self, entity: &'static EntityMeta) -> bool {
        entity
            .fields
            .iter()
            .any(|f| f.kind == ValueKind::Vector && self.existing(entity.name, f.name).is_some())
    }

    /// The index of `field`: on its first use opened from where it was saved, or built from
    /// the collection.
    pub async fn get_or_build(
        &self,
        coll: &Collection<Document>,
        entity: &'static EntityMeta,
        field: &'static str,
    ) -> Result<Arc<VectorIndex>> {
        let slot = self.slot(entity.name, field);
        slot.get_or_try_init(|| self.open(coll, entity, field))
            .await
            .cloned()
    }

    async fn open(
        &self,
        coll: &Collection<Document>,
        entity: &'static EntityMeta,
        field: &'static str,
    ) -> Result<Arc<VectorIndex>> {
        let saved_in = self
            .saved_in(coll, field)
            .filter(|_| self.may_save(entity, field));
        if let Some(dir) = &saved_in {
            if let Some((index, feed)) = reopen(coll, entity, field, dir).await {
                let index = Arc::new(index);
                self.follow(coll, entity, field, &index, feed);
                return Ok(index);
            }
        }
        // The feed opens first, so a change committed while the collection is read is
        // replayed after it (changes are applied idempotently).
        let feed = match self.follow_changes {
            true => Some(changes::open(coll, entity, None).await?),
            false => None,
        };
        let index = build(coll, entity, field, self.scan_limit).await?;
        if let Some(position) = feed.as_ref().and_then(ChangeFeed::resume_point) {
            index.advance_to(position.to_bytes()?);
        }
        if let Some(feed) = feed {
            self.follow(coll, entity, field, &index, feed);
        }
        if let Some(dir) = saved_in {
            let saving = Arc::clone(&index);
            tokio::task::spawn_blocking(move || save_logged(&saving, &dir, entity.name, field));
        }
        Ok(index)
    }

    /// Follows `feed` into `index` until it cannot; the index is then forgotten, so the next
    /// search builds it again.
    fn follow(
        &self,
        coll: &Collection<Document>,
        entity: &'static EntityMeta,
        field: &'static str,
        index: &Arc<VectorIndex>,
        feed: ChangeFeed,
    ) {
        let follower = Follower {
            coll: coll.clone(),
            entity,
            field,
            index: Arc::clone(index),
        };
        let built = Arc::downgrade(&self.built);
        let followed = Arc::downgrade(index);
        let task = tokio::spawn(follower.run(Some(feed), move || {
            forget(&built, (entity.name, field), &followed)
        }));
        let mut followers = lock(&self.followers);
        followers.retain(|f| !f.is_finished());
        followers.push(task);
    }

    fn saved_in(&self, coll: &Collection<Document>, field: &str) -> Option<PathBuf> {
        let namespace = coll.namespace();
        let name = format!("{}.{}.{}", namespace.db, namespace.coll, field);
        self.save_dir.as_ref().map(|dir| dir.join(name))
    }

    /// Whether `entity`'s `field` may be saved: a PII or PHI field (or one not classified)
    /// only with `mongo.vector_index_save_phi_in_clear`, since the save is not encrypted.
    fn may_save(&self, entity: &'static EntityMeta, field: &'static str) -> bool {
        let sensitive = entity
            .field(field)
            .is_none_or(|f| !f.classified || f.sensitivity >= Sensitivity::Pii);
        if sensitive && !self.save_sensitive {
            if lock(&self.unsaved).insert((entity.name, field)) {
                tracing::info!(
                    collection = entity.name,
                    field,
                    "vector index of a PII/PHI field not saved (mongo.vector_index_save_phi_in_clear is off); it is built at each start"
                );
            }
            return false;
        }
        true
    }

    /// The indexes opened so far.
    pub fn status(&self) -> Vec<VectorIndexStatus> {
        let mut all: Vec<VectorIndexStatus> = lock(&self.built)
            .iter()
            .filter_map(|(&(collection, field), slot)| {
                let index = slot.get()?;
                Some(VectorIndexStatus {
                    collection,
                    field,
                    vectors: index.len(),
                    tombstones: index.tombstones(),
                    opened_from_save: index.opened,
                    graph: index.is_graph(),
                    ef: index.ef(),
                })
            })
            .collect();
        all.sort_by_key(|s| (s.collection, s.field));
        all
    }

    /// Stops following the feeds, then saves every index into the save directory, if there
    /// is one.
    pub(crate) async fn close(&self, db: &mongodb::Database) {
        self.stop_following();
        if self.save_dir.is_none() {
            return;
        }
        let built: Vec<_> = lock(&self.built)
            .iter()
            .filter_map(|(&(collection, field), slot)| {
                Some((collection, field, slot.get()?.clone()))
            })
            .collect();
        for (collection, field, index) in built {
            if lock(&self.unsaved).contains(&(collection, field)) {
                continue;
            }
            let Some(dir) = self.saved_in(&db.collection::<Document>(collection), field) else {
                continue;
            };
            let saved =
                tokio::task::spawn_blocking(move || save_logged(&index, &dir, collection, field));
            let _ = saved.await;
        }
    }

    /// Reflects a written record in every built index of its entity.
    pub fn upsert(&self, entity: &'static EntityMeta, record: &Record) {
        for field in entity.fields.iter().filter(|f| f.kind == ValueKind::Vector) {
            let Some(index) = self.existing(entity.name, field.name) else {
                continue;
            };
            let Some(key) = id_key(entity, record) else {
                continue;
            };
            match record.get(field.name) {
                Some(Value::Vector(v)) => {
                    index.insert_many(vec![(key, v.clone())]);
                }
                Some(Value::Null) => index.remove(&key),
                _ => {}
            }
        }
    }

    /// Removes a deleted id from every built index of its entity.
    pub fn remove(&self, entity: &'static EntityMeta, id: &Bson) {
        for field in entity.fields.iter().filter(|f| f.kind == ValueKind::Vector) {
            if let Some(index) = self.existing(entity.name, field.name) {
                index.remove(&key_of(id));
            }
        }
    }
}

/// Removes `index` from `built` if it is still the one kept for `key`.
fn forget(built: &Weak<Built>, key: (&'static str, &'static str), index: &Weak<VectorIndex>) {
    let Some(built) = built.upgrade() else {
        return;
    };
    let mut built = lock(&built);
    let current = built
        .get(&key)
        .and_then(|slot| slot.get().map(Arc::downgrade));
    if current.is_some_and(|current| current.ptr_eq(index)) {
        built.remove(&key);
    }
}

/// The index saved in `dir` and a feed from where it was saved, or `None` (logged) when
/// there is none to open or its place in the feed is gone: it is built afresh then.
async fn reopen(
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    field: &'static str,
    dir: &Path,
) -> Option<(VectorIndex, ChangeFeed)> {
    let started = std::time::Instant::now();
    let reading = dir.to_owned();
    let opened = match tokio::task::spawn_blocking(move || persist::open(&reading)).await {
        Ok(Ok(opened)) => opened?,
        Ok(Err(why)) => {
            tracing::warn!(
                collection = entity.name,
                field,
                why,
                "saved vector index not opened; building it"
            );
            return None;
        }
        Err(_) => {
            tracing::warn!(
                collection = entity.name,
                field,
                "saved vector index could not be read; building it"
            );
            return None;
        }
    };
    let after = opened
        .position()
        .and_then(|bytes| ResumePoint::from_bytes(&bytes).ok())?;
    match changes::open(coll, entity, Some(&after)).await {
        Ok(feed) => {
            tracing::info!(
                collection = entity.name,
                field,
                vectors = opened.len(),
                open_ms = started.elapsed().as_millis() as u64,
                "vector index opened from its save"
            );
            Some((opened, feed))
        }
        Err(e) => {
            tracing::warn!(collection = entity.name, field, error = %e, "saved vector index is too old to bring up to date; building it");
            None
        }
    }
}

fn save_logged(index: &VectorIndex, dir: &Path, collection: &str, field: &str) {
    let started = std::time::Instant::now();
    match persist::save(index, dir) {
        Ok(()) => tracing::info!(
            collection,
            field,
            vectors = index.len(),
            save_ms = started.elapsed().as_millis() as u64,
            "vector index saved"
        ),
        Err(e) => tracing::warn!(collection, field, error = %e, "vector index not saved"),
    }
}

fn id_key(entity: &'static EntityMeta, record: &Record) -> Option<String> {
    let id = record.get(entity.id_field)?.clone();
    let bson = crate::convert::to_bson(entity, entity.id(), id).ok()?;
    Some(key_of(&bson))
}

async fn build(
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    field: &'static str,
    scan_limit: usize,
) -> Result<Arc<VectorIndex>> {
    let key = doc_key(entity, field);
    let mut present = Document::new();
    present.insert(key, doc! { "$ne": Bson::Null });
    let mut projection = doc! { "_id": 1 };
    projection.insert(key, 1);
    let total = coll
        .count_documents(present.clone())
        .await
        .map_err(|e| classify(&e, OP))?;
    let mut cursor = coll
        .find(present)
        .projection(projection)
        .await
        .map_err(|e| classify(&e, OP))?;
    let mut items = Vec::with_capacity(total as usize);
    let mut dimension = None;
    while let Some(doc) = cursor.try_next().await.map_err(|e| classify(&e, OP))? {
        if let (Some(id), Some(v)) = (doc.get("_id"), stored_vector(&doc, key)) {
            dimension.get_or_insert(v.len());
            items.push((key_of(id), v));
        }
    }
    let started = std::time::Instant::now();
    // Minutes of CPU for a large collection: off the async workers.
    let dimension = dimension.unwrap_or(0);
    let (index, skipped, calibration) = tokio::task::spawn_blocking(move || {
        VectorIndex::sized(dimension, items.len(), scan_limit).built_from(items)
    })
    .await
    .map_err(|e| {
        fail(
            ErrorKind::Internal,
            format!("vector index build failed: {e}"),
        )
    })?;
    tracing::info!(
        collection = entity.name,
        field,
        vectors = index.len(),
        skipped,
        build_ms = started.elapsed().as_millis() as u64,
        graph = index.is_graph(),
        ef = index.ef(),
        sample_recall = calibration.map(|c| c.recall),
        "vector index built"
    );
    Ok(Arc::new(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl_config::StoreConfig as _;
    use udl_core::{CachePolicy, FieldMeta};

    static META: EntityMeta = EntityMeta {
        name: "embedded",
        fields: &[
            FieldMeta::of::<i64>("id").classified(Sensitivity::Internal),
            FieldMeta::of::<Vec<f32>>("topic").classified(Sensitivity::Internal),
            FieldMeta::of::<Vec<f32>>("symptoms").classified(Sensitivity::Phi),
            FieldMeta::of::<Vec<f32>>("undeclared"),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: CachePolicy::NONE,
    };

    fn indexes(phi_in_clear: &str) -> VectorIndexes {
        let vars = [
            ("UDL__MONGO__URL", "mongodb://localhost/"),
            ("UDL__MONGO__VECTOR_INDEX_DIR", "/var/lib/udl/vectors"),
            ("UDL__MONGO__VECTOR_INDEX_SAVE_PHI_IN_CLEAR", phi_in_clear),
        ];
        let config =
            MongoConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v.to_owned())))
                .unwrap();
        VectorIndexes::new(true, &config)
    }

    #[test]
    fn indexes_of_phi_or_undeclared_fields_are_saved_only_when_allowed_by_name() {
        let default = indexes("false");
        assert!(default.may_save(&META, "topic"));
        assert!(
            !default.may_save(&META, "symptoms"),
            "PHI vectors stay off disk"
        );
        assert!(!default.may_save(&META, "undeclared"), "fail closed");
        assert!(lock(&default.unsaved).contains(&("embedded", "symptoms")));

        let allowed = indexes("true");
        assert!(allowed.may_save(&META, "symptoms"));
        assert!(allowed.may_save(&META, "undeclared"));
    }
}
