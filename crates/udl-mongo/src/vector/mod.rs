//! Similarity search over a vector field (cosine), computed by udl because FerretDB and
//! non-Atlas MongoDB have no `$vectorSearch`.
//!
//! The prefilter always runs in MongoDB. When at most [`EXACT_SCAN_LIMIT`] documents match,
//! their vectors are scored exactly. Above that, an in-process HNSW index of the field
//! (built from the collection on first use or opened from where it was saved, kept current by
//! this process's writes and by everyone's through the change feed) proposes
//! candidates, which are fetched with the prefilter and re-scored exactly from their stored
//! vectors, so a result is never stale or outside the prefilter. Once that index is built over
//! more than [`EXACT_SCAN_LIMIT`] vectors, a search asks it first and is done in one round
//! trip when the prefilter keeps `k` of its proposals; only a more selective prefilter costs
//! the count that decides between the index and an exact scan. Without change streams
//! (FerretDB, a standalone server) writes by other processes reach the index only when it is
//! built again, on restart.

mod calibrate;
mod exact;
mod follow;
mod index;
mod indexes;
mod persist;
mod scan;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use udl_core::{EntityMeta, Error, ErrorKind, Record, Result, StoreKind};

use crate::convert::doc_key;
use crate::error::classify;

pub use calibrate::{Calibration, RECALL_TARGET};
pub use index::{exact_top_k, VectorIndex, SCAN_LIMIT};
pub use indexes::{VectorIndexStatus, VectorIndexes};

/// Up to this many matching documents, search is an exact scan.
pub const EXACT_SCAN_LIMIT: u64 = 2_000;

const OP: &str = "nearest";

fn fail(kind: ErrorKind, message: String) -> Error {
    Error::new(kind, message)
        .with_store(StoreKind::MONGO)
        .with_operation(OP)
}

/// The `k` documents matching `prefilter` (already in MongoDB's terms, expired records left
/// out) most similar to `query`, best first.
pub async fn nearest(
    indexes: &VectorIndexes,
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    field: &'static str,
    query: &[f32],
    k: usize,
    prefilter: Document,
) -> Result<Vec<(Record, f32)>> {
    let key = doc_key(entity, field);
    let mut with_vector = Document::new();
    with_vector.insert(key, doc! { "$ne": Bson::Null });
    let matching = doc! { "$and": [prefilter, with_vector] };
    let search = Search {
        coll,
        entity,
        field,
        query,
        k,
        matching: &matching,
    };
    let mut fetch = (k * 4).max(32);
    if let Some(index) = indexes
        .existing(entity.name, field)
        .filter(|index| index.len() as u64 > EXACT_SCAN_LIMIT)
    {
        let found = search.proposed_by(&index, fetch).await?;
        if found.len() >= k {
            return Ok(found);
        }
        // That many proposals were too few; a wider search starts beyond them.
        fetch *= 4;
    }
    let candidates = coll
        .count_documents(matching.clone())
        .await
        .map_err(|e| classify(&e, OP))?;
    if candidates <= EXACT_SCAN_LIMIT {
        return exact::nearest(coll, entity, field, query, k, matching).await;
    }
    let index = indexes.get_or_build(coll, entity, field).await?;
    // Overfetch, then widen while the prefilter leaves fewer than k candidates.
    loop {
        let found = search.proposed_by(&index, fetch).await?;
        if found.len() >= k || fetch >= index.len() {
            return Ok(found);
        }
        fetch *= 4;
    }
}

/// One similarity search: the `k` documents of `coll` matching `matching` nearest to `query`.
struct Search<'a> {
    coll: &'a Collection<Document>,
    entity: &'static EntityMeta,
    field: &'static str,
    query: &'a [f32],
    k: usize,
    matching: &'a Document,
}

impl Search<'_> {
    /// The best `k` of the `fetch` documents `index` proposes that match, re-scored exactly
    /// from their stored vectors.
    async fn proposed_by(&self, index: &VectorIndex, fetch: usize) -> Result<Vec<(Record, f32)>> {
        if self.query.len() != index.dimension() {
            return Err(dimension_mismatch(
                self.field,
                self.query.len(),
                index.dimension(),
            ));
        }
        let ids: Vec<Bson> = index
            .search(self.query, fetch, index.ef().max(fetch))
            .iter()
            .filter_map(|(key, _)| indexes::id_of(key))
            .collect();
        let mut within = Document::new();
        within.insert("_id", doc! { "$in": ids });
        let restricted = doc! { "$and": [self.matching.clone(), within] };
        let (entity, field) = (self.entity, self.field);
        exact::nearest(self.coll, entity, field, self.query, self.k, restricted).await
    }
}

fn dimension_mismatch(field: &str, query: usize, stored: usize) -> Error {
    fail(
        ErrorKind::InvalidInput,
        format!("query has {query} dimensions, stored {field} vectors have {stored}"),
    )
}

/// The vector stored under `key`, if it is an array of numbers.
fn stored_vector(doc: &Document, key: &str) -> Option<Vec<f32>> {
    match doc.get(key)? {
        Bson::Array(items) => items
            .iter()
            .map(|x| match x {
                Bson::Double(f) => Some(*f as f32),
                Bson::Int32(i) => Some(*i as f32),
                Bson::Int64(i) => Some(*i as f32),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `mutex`'s guard, also after a panic elsewhere poisoned it (the guarded maps stay whole).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`lock`] for reading an `RwLock`.
fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

/// [`lock`] for writing an `RwLock`.
fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Euclidean norm.
pub(crate) fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Cosine similarity; a zero stored vector scores 0.
pub(crate) fn cosine(query: &[f32], query_norm: f32, stored: &[f32]) -> f32 {
    let stored_norm = norm(stored);
    if stored_norm == 0.0 {
        return 0.0;
    }
    let dot: f32 = query.iter().zip(stored).map(|(a, b)| a * b).sum();
    dot / (query_norm * stored_norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_and_opposite_vectors() {
        let q = [1.0, 2.0];
        assert!((cosine(&q, norm(&q), &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&q, norm(&q), &[-1.0, -2.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&q, norm(&q), &[0.0, 0.0]), 0.0);
    }
}
