//! Similarity search over a vector field (cosine), computed by udl because FerretDB and
//! non-Atlas MongoDB have no `$vectorSearch`.
//!
//! The prefilter always runs in MongoDB. When at most [`EXACT_SCAN_LIMIT`] documents match,
//! their vectors are scored exactly. Above that, an in-process HNSW index of the field
//! (built from the collection on first use, kept current by this process's writes) proposes
//! candidates, which are fetched with the prefilter and re-scored exactly from their stored
//! vectors, so a result is never stale or outside the prefilter. Writes by other processes
//! reach the index only when it is rebuilt (on restart).

mod exact;
mod index;
mod indexes;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use udl_core::{EntityMeta, Error, ErrorKind, Record, Result, StoreKind};

use crate::convert::doc_key;
use crate::error::classify;

pub use index::{exact_top_k, VectorIndex};
pub use indexes::VectorIndexes;

/// Up to this many matching documents, search is an exact scan.
pub const EXACT_SCAN_LIMIT: u64 = 2_000;
/// Candidates explored per index search.
const EF_SEARCH: usize = 128;

const OP: &str = "nearest";

fn fail(kind: ErrorKind, message: String) -> Error {
    Error::new(kind, message)
        .with_store(StoreKind::Mongo)
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
    let candidates = coll
        .count_documents(matching.clone())
        .await
        .map_err(|e| classify(&e, OP))?;
    if candidates <= EXACT_SCAN_LIMIT {
        return exact::nearest(coll, entity, field, query, k, matching).await;
    }
    let index = indexes.get_or_build(coll, entity, field).await?;
    if query.len() != index.dimension() {
        return Err(dimension_mismatch(field, query.len(), index.dimension()));
    }
    // Overfetch, then widen while the prefilter leaves fewer than k candidates.
    let mut fetch = (k * 4).max(32);
    loop {
        let proposed = index.search(query, fetch, EF_SEARCH.max(fetch));
        let ids: Vec<Bson> = proposed
            .iter()
            .filter_map(|(key, _)| indexes::id_of(key))
            .collect();
        let mut within = Document::new();
        within.insert("_id", doc! { "$in": ids });
        let restricted = doc! { "$and": [matching.clone(), within] };
        let found = exact::nearest(coll, entity, field, query, k, restricted).await?;
        if found.len() >= k || fetch >= index.len() {
            return Ok(found);
        }
        fetch *= 4;
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
