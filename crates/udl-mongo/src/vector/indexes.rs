//! The in-process indexes of one store, one per (collection, vector field): built once on
//! first use (concurrent first searches share one build) and kept current by writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use tokio::sync::OnceCell;
use udl_core::{EntityMeta, Record, Result, Value, ValueKind};

use super::{stored_vector, VectorIndex, OP};
use crate::convert::doc_key;
use crate::error::classify;

type Slot = Arc<OnceCell<Arc<VectorIndex>>>;

/// Indexes by (collection, field).
#[derive(Default)]
pub struct VectorIndexes {
    built: Mutex<HashMap<(&'static str, &'static str), Slot>>,
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
    fn slot(&self, collection: &'static str, field: &'static str) -> Slot {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(built.entry((collection, field)).or_default())
    }

    /// The index of `collection`'s `field`, if it has been built.
    pub(crate) fn existing(
        &self,
        collection: &'static str,
        field: &'static str,
    ) -> Option<Arc<VectorIndex>> {
        let built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        built
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

    /// The index of `field`, built from the collection if this is its first use.
    pub async fn get_or_build(
        &self,
        coll: &Collection<Document>,
        entity: &'static EntityMeta,
        field: &'static str,
    ) -> Result<Arc<VectorIndex>> {
        let slot = self.slot(entity.name, field);
        slot.get_or_try_init(|| build(coll, entity, field))
            .await
            .cloned()
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

fn id_key(entity: &'static EntityMeta, record: &Record) -> Option<String> {
    let id = record.get(entity.id_field)?.clone();
    let bson = crate::convert::to_bson(entity, entity.id(), id).ok()?;
    Some(key_of(&bson))
}

async fn build(
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    field: &'static str,
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
    let index = VectorIndex::new(dimension.unwrap_or(0), items.len());
    let started = std::time::Instant::now();
    let skipped = index.insert_many(items);
    tracing::info!(
        collection = entity.name,
        field,
        vectors = index.len(),
        skipped,
        build_ms = started.elapsed().as_millis() as u64,
        "vector index built"
    );
    Ok(Arc::new(index))
}
