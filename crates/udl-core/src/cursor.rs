//! Opaque keyset-pagination cursors and the filter that resumes after one.

use base64::Engine as _;

use crate::entity::EntityMeta;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::query::{Direction, SortKey};
use crate::record::Record;
use crate::value::Value;

/// Points just after a record in a given sort order. Opaque to callers.
#[derive(Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// Cursor just after `record` in `sort` order.
    pub(crate) fn after(record: &Record, sort: &[SortKey]) -> Self {
        let keys: Vec<serde_json::Value> = sort
            .iter()
            .map(|key| {
                let value = record.get(&key.field).cloned().unwrap_or(Value::Null);
                serde_json::json!([key.field, value.to_json()])
            })
            .collect();
        let json = serde_json::Value::Array(keys).to_string();
        Cursor(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    /// Wraps a cursor string received from a client.
    pub fn from_string(s: impl Into<String>) -> Self {
        Cursor(s.into())
    }

    /// The string to hand to a client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes the sort-key values, checking the cursor was made for exactly this sort.
    fn values(&self, entity: &EntityMeta, sort: &[SortKey]) -> Result<Vec<Value>> {
        let bad = || Error::invalid("cursor is malformed or was made for another sort order");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| bad())?;
        let keys: Vec<(String, serde_json::Value)> =
            serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if keys.len() != sort.len() {
            return Err(bad());
        }
        keys.iter()
            .zip(sort)
            .map(|((name, json), key)| {
                if *name != key.field {
                    return Err(bad());
                }
                let field = entity.require_field(name)?;
                Value::from_json(field.kind, json).map_err(|_| bad())
            })
            .collect()
    }

    /// The filter selecting records strictly after this cursor in `sort` order, following
    /// the neutral null ordering (nulls are the smallest value).
    pub(crate) fn resume_filter(&self, entity: &EntityMeta, sort: &[SortKey]) -> Result<Filter> {
        let values = self.values(entity, sort)?;
        let mut alternatives = Vec::with_capacity(sort.len());
        for i in 0..sort.len() {
            let mut terms: Vec<Filter> = sort[..i]
                .iter()
                .zip(&values)
                .map(|(key, v)| equal(&key.field, v))
                .collect();
            match beyond(&sort[i], &values[i]) {
                Some(f) => terms.push(f),
                None => continue,
            }
            alternatives.push(Filter::And(terms));
        }
        Ok(match alternatives.len() {
            0 => Filter::In(entity.id_field.to_owned(), vec![]),
            _ => Filter::Or(alternatives),
        })
    }
}

/// `field` equals `v`, where a null `v` means "is null".
fn equal(field: &str, v: &Value) -> Filter {
    match v {
        Value::Null => Filter::IsNull(field.to_owned()),
        v => Filter::Eq(field.to_owned(), v.clone()),
    }
}

/// Records strictly beyond `v` in the key's direction; `None` when nothing can be.
fn beyond(key: &SortKey, v: &Value) -> Option<Filter> {
    let name = key.field.clone();
    match (key.direction, v) {
        (Direction::Asc, Value::Null) => Some(Filter::Not(Box::new(Filter::IsNull(name)))),
        (Direction::Asc, v) => Some(Filter::Gt(name, v.clone())),
        (Direction::Desc, Value::Null) => None,
        (Direction::Desc, v) => Some(Filter::Or(vec![
            Filter::Lt(name.clone(), v.clone()),
            Filter::IsNull(name),
        ])),
    }
}

/// Cursors may encode field values, so `Debug` does not show them.
impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursor(<opaque>)")
    }
}
