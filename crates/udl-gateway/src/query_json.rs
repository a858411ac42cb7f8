//! The neutral filter language, sort and paging as JSON (the body of `:list`, `:count` and
//! `:nearest`):
//!
//! ```json
//! {"filter": {"status": {"eq": "active"}, "$or": [{"score": {"gte": 3}}, {"score": {"is_null": true}}]},
//!  "sort": ["-created_at"], "limit": 50, "cursor": "..."}
//! ```
//!
//! A filter object ANDs its entries; a key is a field name with a condition object
//! (`eq`, `ne`, `lt`, `lte`, `gt`, `gte`, `in`, `is_null`, `prefix`; several in one object are
//! ANDed) or one of `$and`, `$or` (lists of filters) and `$not` (a filter).

use serde_json::{Map, Value as Json};
use udl::{field, Cursor, EntityMeta, Error, Filter, Page, Result, SortKey};

use crate::json_record::field_value;

/// Deepest nesting of `$and`, `$or` and `$not` accepted.
const MAX_DEPTH: usize = 32;

/// The filter a JSON value describes (`null` or absent: every record).
pub fn filter_from_json(entity: &'static EntityMeta, json: Option<&Json>) -> Result<Filter> {
    match json {
        None | Some(Json::Null) => Ok(Filter::All),
        Some(json) => parse(entity, json, 0),
    }
}

fn parse(entity: &'static EntityMeta, json: &Json, depth: usize) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(format!(
            "filter nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let object = json
        .as_object()
        .ok_or_else(|| Error::invalid("a filter must be a JSON object"))?;
    let mut all = Filter::All;
    for (key, value) in object {
        let part = match key.as_str() {
            "$and" | "$or" => {
                let items = value
                    .as_array()
                    .ok_or_else(|| Error::invalid("$and and $or take a list of filters"))?;
                let parts = items
                    .iter()
                    .map(|f| parse(entity, f, depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                if key == "$and" {
                    Filter::And(parts)
                } else {
                    Filter::Or(parts)
                }
            }
            "$not" => parse(entity, value, depth + 1)?.not(),
            name => condition(entity, name, value)?,
        };
        all = all.and(part);
    }
    Ok(all)
}

fn condition(entity: &'static EntityMeta, name: &str, json: &Json) -> Result<Filter> {
    let declared = entity.require_field(name)?;
    let ops: &Map<String, Json> = json.as_object().ok_or_else(|| {
        Error::invalid(format!(
            "entity {}: the condition on field {} must be an object such as {{\"eq\": ...}}",
            entity.name, declared.name
        ))
    })?;
    if ops.is_empty() {
        return Err(Error::invalid(format!(
            "entity {}: empty condition on field {}",
            entity.name, declared.name
        )));
    }
    let value = |v: &Json| field_value(entity, declared.name, declared.kind, v);
    let mut all = Filter::All;
    for (op, operand) in ops {
        let f = field(declared.name);
        let part = match op.as_str() {
            "eq" => f.eq(value(operand)?),
            "ne" => f.ne(value(operand)?),
            "lt" => f.lt(value(operand)?),
            "lte" => f.lte(value(operand)?),
            "gt" => f.gt(value(operand)?),
            "gte" => f.gte(value(operand)?),
            "in" => {
                let items = operand.as_array().ok_or_else(|| {
                    Error::invalid(format!("field {}: in takes a list", declared.name))
                })?;
                f.is_in(items.iter().map(value).collect::<Result<Vec<_>>>()?)
            }
            "is_null" => match operand.as_bool() {
                Some(true) => f.is_null(),
                Some(false) => f.is_not_null(),
                None => return Err(Error::invalid("is_null takes true or false")),
            },
            "prefix" => f.starts_with(
                operand
                    .as_str()
                    .ok_or_else(|| Error::invalid("prefix takes a string"))?,
            ),
            _ => {
                return Err(Error::invalid(format!(
                "field {}: unknown operator; use eq, ne, lt, lte, gt, gte, in, is_null or prefix",
                declared.name
            )))
            }
        };
        all = all.and(part);
    }
    Ok(all)
}

/// Sort keys from `["field", "-other"]` (a leading `-` sorts descending).
pub fn sort_from_json(entity: &'static EntityMeta, json: Option<&Json>) -> Result<Vec<SortKey>> {
    let Some(json) = json.filter(|j| !j.is_null()) else {
        return Ok(Vec::new());
    };
    let items = json
        .as_array()
        .ok_or_else(|| Error::invalid("sort takes a list of field names"))?;
    items
        .iter()
        .map(|item| {
            let text = item
                .as_str()
                .ok_or_else(|| Error::invalid("sort takes a list of field names"))?;
            let (name, descending) = match text.strip_prefix('-') {
                Some(name) => (name, true),
                None => (text, false),
            };
            let declared = entity.require_field(name)?;
            Ok(if descending {
                SortKey::desc(declared.name)
            } else {
                SortKey::asc(declared.name)
            })
        })
        .collect()
}

/// Default page size of `:list`.
const DEFAULT_LIMIT: u64 = 50;

/// The page `limit` and `cursor` ask for.
pub fn page_from_json(body: &Json) -> Result<Page> {
    let limit = match body.get("limit") {
        None | Some(Json::Null) => DEFAULT_LIMIT,
        Some(l) => l
            .as_u64()
            .ok_or_else(|| Error::invalid("limit must be a positive integer"))?,
    };
    let limit = usize::try_from(limit).map_err(|_| Error::invalid("limit is too large"))?;
    Ok(match body.get("cursor") {
        None | Some(Json::Null) => Page::first(limit),
        Some(Json::String(c)) => Page::after(Cursor::from_string(c.clone()), limit),
        Some(_) => {
            return Err(Error::invalid(
                "cursor must be a string from a previous page",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl::Entity;

    #[derive(udl::Entity, Clone)]
    #[udl(table = "notes", store = "postgres")]
    struct Note {
        #[udl(id, internal)]
        id: i64,
        #[udl(internal)]
        title: String,
        #[udl(internal)]
        score: Option<i64>,
    }

    #[test]
    fn filters_parse_into_the_neutral_language() {
        let json = serde_json::json!({
            "title": {"prefix": "a"},
            "$or": [{"score": {"gte": 3}}, {"score": {"is_null": true}}]
        });
        let filter = filter_from_json(Note::meta(), Some(&json)).unwrap();
        // Keys keep the body's order (serde_json's preserve_order is on in this tree).
        let expected = Filter::All
            .and(field("title").starts_with("a"))
            .and(Filter::Or(vec![
                field("score").gte(3_i64),
                field("score").is_null(),
            ]));
        assert_eq!(filter, expected);
    }

    #[test]
    fn hostile_filters_are_refused_without_echo() {
        for json in [
            serde_json::json!({"title'--": {"eq": "x"}}),
            serde_json::json!({"title": {"$where": "fake-canary"}}),
            serde_json::json!({"score": {"eq": "fake-canary"}}),
            serde_json::json!({"title": "fake-canary"}),
        ] {
            let err = filter_from_json(Note::meta(), Some(&json)).unwrap_err();
            assert!(!err.to_string().contains("canary"), "{err}");
            assert!(!err.to_string().contains("--"), "{err}");
        }
        let mut deep = serde_json::json!({"score": {"is_null": true}});
        for _ in 0..40 {
            deep = serde_json::json!({"$not": deep});
        }
        assert!(filter_from_json(Note::meta(), Some(&deep)).is_err());
    }

    #[test]
    fn sort_reads_direction_from_a_leading_dash() {
        let json = serde_json::json!(["-score", "title"]);
        let sort = sort_from_json(Note::meta(), Some(&json)).unwrap();
        assert_eq!(sort, vec![SortKey::desc("score"), SortKey::asc("title")]);
    }
}
