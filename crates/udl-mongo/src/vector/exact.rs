//! Exact scoring of the documents a query selects: only `_id` and the vector travel, then
//! the full documents of the best `k` are fetched.

use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use udl_core::{EntityMeta, ErrorKind, Record, Result};

use super::{cosine, dimension_mismatch, fail, norm, stored_vector, OP};
use crate::convert::{self, doc_key};
use crate::error::classify;

/// The `k` documents selected by `matching` most similar to `query`, best first.
pub async fn nearest(
    coll: &Collection<Document>,
    entity: &'static EntityMeta,
    field: &'static str,
    query: &[f32],
    k: usize,
    matching: Document,
) -> Result<Vec<(Record, f32)>> {
    let key = doc_key(entity, field);
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
            return Err(dimension_mismatch(field, query.len(), stored.len()));
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
