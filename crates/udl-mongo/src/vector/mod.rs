//! Similarity search over a vector field: exact cosine similarity, computed here.
//!
//! The prefilter runs in MongoDB; only `_id` and the vector of matching documents travel,
//! and the full documents of the best `k` are fetched afterwards. The scan is bounded: when
//! more documents match than [`MAX_EXACT_CANDIDATES`], the search is refused rather than
//! silently scanning a large collection. (Atlas `$vectorSearch` and an in-process HNSW index
//! for large collections are the next steps.)

use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use udl_core::{EntityMeta, Error, ErrorKind, Filter, Record, Result, StoreKind};

use crate::convert::{self, doc_key};
use crate::error::classify;
use crate::filter;

mod index;

pub use index::{exact_top_k, VectorIndex};

/// Most documents one exact search may score.
pub const MAX_EXACT_CANDIDATES: u64 = 20_000;

const OP: &str = "nearest";

fn fail(kind: ErrorKind, message: String) -> Error {
    Error::new(kind, message)
        .with_store(StoreKind::Mongo)
        .with_operation(OP)
}

/// The `k` documents matching `prefilter` most similar to `query`, best first.
pub async fn nearest(
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    field: &'static str,
    query: &[f32],
    k: usize,
    prefilter: &Filter,
) -> Result<Vec<(Record, f32)>> {
    let key = doc_key(entity, field);
    let mut with_vector = Document::new();
    with_vector.insert(key, doc! { "$ne": Bson::Null });
    let matching = doc! { "$and": [filter::query(entity, prefilter)?, with_vector] };
    let candidates = coll
        .count_documents(matching.clone())
        .await
        .map_err(|e| classify(&e, OP))?;
    if candidates > MAX_EXACT_CANDIDATES {
        return Err(fail(
            ErrorKind::Unsupported,
            format!(
                "exact similarity search would score {candidates} documents (limit \
                 {MAX_EXACT_CANDIDATES}); narrow the prefilter"
            ),
        ));
    }
    let mut projection = doc! { "_id": 1 };
    projection.insert(key, 1);
    let mut cursor = coll
        .find(matching)
        .projection(projection)
        .await
        .map_err(|e| classify(&e, OP))?;
    let query_norm = norm(query);
    let mut best: Vec<(Bson, f32)> = Vec::with_capacity(k + 1);
    while let Some(doc) = cursor.try_next().await.map_err(|e| classify(&e, OP))? {
        let Some(stored) = stored_vector(&doc, key) else {
            return Err(fail(
                ErrorKind::DataCorruption,
                format!("entity {}: field {field} holds a non-vector", entity.name),
            ));
        };
        if stored.len() != query.len() {
            return Err(fail(
                ErrorKind::InvalidInput,
                format!(
                    "query has {} dimensions, stored {field} vectors have {}",
                    query.len(),
                    stored.len()
                ),
            ));
        }
        let score = cosine(query, query_norm, &stored);
        if best.len() < k || best.last().is_some_and(|(_, worst)| score > *worst) {
            let at = best.partition_point(|(_, s)| *s >= score);
            best.insert(at, (doc.get("_id").cloned().unwrap_or(Bson::Null), score));
            best.truncate(k);
        }
    }
    fetch_ranked(coll, entity, best).await
}

/// Full documents of the ranked ids, in rank order.
async fn fetch_ranked(
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    ranked: Vec<(Bson, f32)>,
) -> Result<Vec<(Record, f32)>> {
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Bson> = ranked.iter().map(|(id, _)| id.clone()).collect();
    let docs: Vec<Document> = coll
        .find(doc! { "_id": { "$in": ids } })
        .await
        .map_err(|e| classify(&e, OP))?
        .try_collect()
        .await
        .map_err(|e| classify(&e, OP))?;
    let mut out = Vec::with_capacity(ranked.len());
    for (id, score) in ranked {
        // A document deleted between the two reads is simply left out.
        if let Some(doc) = docs.iter().find(|d| d.get("_id") == Some(&id)) {
            let record = convert::record(entity, doc.clone()).map_err(|e| e.with_operation(OP))?;
            out.push((record, score));
        }
    }
    Ok(out)
}

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
