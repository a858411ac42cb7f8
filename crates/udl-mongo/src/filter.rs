//! The neutral filter language as MongoDB query documents. Field names come from entity
//! metadata only; values are BSON values, never operators, so no `$where` or JavaScript can
//! enter through them.

use mongodb::bson::{doc, Bson, Document};
use udl_core::{Direction, EntityMeta, Filter, Result, SortKey, Value};

use crate::convert::{doc_key, to_bson};

/// Matches nothing (`$or` refuses an empty list).
fn nothing() -> Document {
    doc! { "_id": { "$in": [] } }
}

fn key(entity: &EntityMeta, name: &str) -> Result<&'static str> {
    entity.require_field(name)?;
    Ok(doc_key(entity, name))
}

fn value(entity: &EntityMeta, name: &str, v: &Value) -> Result<Bson> {
    to_bson(entity, entity.require_field(name)?, v.clone())
}

fn op(entity: &EntityMeta, name: &str, operator: &str, v: &Value) -> Result<Document> {
    let mut condition = Document::new();
    condition.insert(operator, value(entity, name, v)?);
    let mut d = Document::new();
    d.insert(key(entity, name)?, condition);
    Ok(d)
}

/// The query document for `filter`. MongoDB's null handling already matches udl's: a
/// comparison with a missing or null field is false, `$ne` and `$nor` match it.
pub fn query(entity: &EntityMeta, filter: &Filter) -> Result<Document> {
    Ok(match filter {
        Filter::All => Document::new(),
        Filter::Eq(name, Value::Null) | Filter::IsNull(name) => {
            let mut d = Document::new();
            d.insert(key(entity, name)?, Bson::Null);
            d
        }
        Filter::Ne(name, Value::Null) => op(entity, name, "$ne", &Value::Null)?,
        // The implicit form lets FerretDB push equality down to its storage; a JSON value
        // keeps `$eq` so a document can never be read as operators.
        Filter::Eq(name, v @ Value::Json(_)) => op(entity, name, "$eq", v)?,
        Filter::Eq(name, v) => {
            let mut d = Document::new();
            d.insert(key(entity, name)?, value(entity, name, v)?);
            d
        }
        Filter::Ne(name, v) => op(entity, name, "$ne", v)?,
        Filter::Lt(name, v) => op(entity, name, "$lt", v)?,
        Filter::Lte(name, v) => op(entity, name, "$lte", v)?,
        Filter::Gt(name, v) => op(entity, name, "$gt", v)?,
        Filter::Gte(name, v) => op(entity, name, "$gte", v)?,
        Filter::In(name, values) => {
            let list = values
                .iter()
                .map(|v| value(entity, name, v))
                .collect::<Result<Vec<_>>>()?;
            let mut d = Document::new();
            d.insert(key(entity, name)?, doc! { "$in": list });
            d
        }
        Filter::Prefix(name, prefix) => {
            let mut d = Document::new();
            d.insert(
                key(entity, name)?,
                doc! { "$regex": format!("^{}", escape_regex(prefix)) },
            );
            d
        }
        Filter::And(parts) if parts.is_empty() => Document::new(),
        Filter::And(parts) => {
            doc! { "$and": parts.iter().map(|f| query(entity, f)).collect::<Result<Vec<_>>>()? }
        }
        Filter::Or(parts) if parts.is_empty() => nothing(),
        Filter::Or(parts) => {
            doc! { "$or": parts.iter().map(|f| query(entity, f)).collect::<Result<Vec<_>>>()? }
        }
        Filter::Not(inner) => doc! { "$nor": [query(entity, inner)?] },
    })
}

/// The sort document; MongoDB sorts null and missing first, udl's neutral order.
pub fn sort(entity: &EntityMeta, keys: &[SortKey]) -> Result<Document> {
    let mut d = Document::new();
    for k in keys {
        let direction = match k.direction {
            Direction::Asc => 1,
            Direction::Desc => -1,
        };
        d.insert(key(entity, &k.field)?, direction);
    }
    Ok(d)
}

/// Escapes every regex metacharacter so the prefix matches literally.
fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl_core::{field, FieldMeta};

    static NOTES: EntityMeta = EntityMeta {
        name: "notes",
        fields: &[FieldMeta::of::<i64>("id"), FieldMeta::of::<String>("title")],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: udl_core::CachePolicy::NONE,
    };

    #[test]
    fn operator_lookalikes_stay_values() {
        let q = query(&NOTES, &field("title").eq("{\"$gt\": \"\"}")).unwrap();
        assert_eq!(q, doc! { "title": "{\"$gt\": \"\"}" });
        let q = query(&NOTES, &field("id").eq(5_i64).not()).unwrap();
        assert_eq!(q, doc! { "$nor": [{ "_id": 5_i64 }] });
    }

    #[test]
    fn prefix_is_escaped() {
        assert_eq!(escape_regex("a.b*(c)"), "a\\.b\\*\\(c\\)");
    }
}
