//! A canonical fingerprint of a query, so equal queries share one L3 entry.

use sha2::{Digest, Sha256};
use udl_core::{Direction, Filter, Query};

fn filter_json(f: &Filter) -> serde_json::Value {
    use serde_json::json;
    match f {
        Filter::All => json!("all"),
        Filter::Eq(n, v) => json!(["eq", n, v.to_json()]),
        Filter::Ne(n, v) => json!(["ne", n, v.to_json()]),
        Filter::Lt(n, v) => json!(["lt", n, v.to_json()]),
        Filter::Lte(n, v) => json!(["lte", n, v.to_json()]),
        Filter::Gt(n, v) => json!(["gt", n, v.to_json()]),
        Filter::Gte(n, v) => json!(["gte", n, v.to_json()]),
        Filter::In(n, vs) => json!(["in", n, vs.iter().map(|v| v.to_json()).collect::<Vec<_>>()]),
        Filter::IsNull(n) => json!(["null", n]),
        Filter::Prefix(n, p) => json!(["prefix", n, p]),
        Filter::And(fs) => json!(["and", fs.iter().map(filter_json).collect::<Vec<_>>()]),
        Filter::Or(fs) => json!(["or", fs.iter().map(filter_json).collect::<Vec<_>>()]),
        Filter::Not(f) => json!(["not", filter_json(f)]),
    }
}

/// SHA-256 of the query's canonical JSON (values included, so the key reveals none).
pub fn fingerprint(query: &Query) -> [u8; 32] {
    let sort: Vec<serde_json::Value> = query
        .sort
        .iter()
        .map(|k| serde_json::json!([k.field, matches!(k.direction, Direction::Asc)]))
        .collect();
    let canonical =
        serde_json::json!([filter_json(&query.filter), sort, query.limit, query.offset]);
    Sha256::digest(canonical.to_string().as_bytes()).into()
}
