//! JSON bodies to records and back, field by field against the entity's declaration: unknown
//! fields and values of the wrong kind are refused, naming the field, never echoing the value.

use serde_json::{Map, Value as Json};
use udl::{Changes, EntityMeta, Error, Record, Result, Value, ValueKind};

/// The record a JSON object describes (every key a field of `entity`).
pub fn record_from_json(entity: &'static EntityMeta, body: &Json) -> Result<Record> {
    let object = as_object(body)?;
    let mut record = Record::with_capacity(object.len());
    for (name, json) in object {
        let field = entity.require_field(name)?;
        record.set(
            field.name,
            field_value(entity, field.name, field.kind, json)?,
        );
    }
    Ok(record)
}

/// The changes a JSON object asks for (`PATCH`), expecting `version` when the caller sent one.
pub fn changes_from_json(
    entity: &'static EntityMeta,
    body: &Json,
    version: Option<i64>,
) -> Result<Changes> {
    let mut changes = Changes::new();
    for (name, json) in as_object(body)? {
        let field = entity.require_field(name)?;
        changes = changes.set(
            field.name,
            field_value(entity, field.name, field.kind, json)?,
        );
    }
    Ok(match version {
        Some(v) => changes.expect_version(v),
        None => changes,
    })
}

/// The changes replacing every field of the record but its id and version (`PUT`).
pub fn replacement(entity: &'static EntityMeta, record: Record, version: Option<i64>) -> Changes {
    let mut changes = Changes::new();
    for (name, value) in record.iter() {
        if name != entity.id_field && Some(name) != entity.version_field {
            changes = changes.set(name, value.clone());
        }
    }
    match version {
        Some(v) => changes.expect_version(v),
        None => changes,
    }
}

/// A record as a JSON object, fields in declaration order.
pub fn record_to_json(entity: &'static EntityMeta, record: &Record) -> Json {
    let mut object = Map::with_capacity(entity.fields.len());
    for field in entity.fields {
        let value = record.get(field.name).map_or(Json::Null, Value::to_json);
        object.insert(field.name.to_owned(), value);
    }
    Json::Object(object)
}

/// The id a path segment names, read as the id field's kind.
pub fn id_from_path(entity: &'static EntityMeta, segment: &str) -> Result<Value> {
    let field = entity.id();
    let bad = || {
        Error::invalid(format!(
            "entity {}: the id is not a {:?}",
            entity.name, field.kind
        ))
    };
    Ok(match field.kind {
        ValueKind::Uuid => Value::Uuid(segment.parse().map_err(|_| bad())?),
        ValueKind::Int => Value::Int(segment.parse().map_err(|_| bad())?),
        ValueKind::Text => Value::Text(segment.to_owned()),
        kind => Value::from_json(kind, &Json::String(segment.to_owned())).map_err(|_| bad())?,
    })
}

/// One field's value from JSON; a wrong shape names the field, not the value.
pub fn field_value(
    entity: &EntityMeta,
    field: &str,
    kind: ValueKind,
    json: &Json,
) -> Result<Value> {
    Value::from_json(kind, json).map_err(|_| {
        Error::invalid(format!(
            "entity {}: field {field} expects {}",
            entity.name,
            json_shape(kind)
        ))
    })
}

/// How a value of `kind` is written in JSON, for messages and the OpenAPI document.
pub fn json_shape(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Bool => "a boolean",
        ValueKind::Int => "an integer",
        ValueKind::Float => "a number",
        ValueKind::Text => "a string",
        ValueKind::Bytes => "a base64 string",
        ValueKind::Uuid => "a UUID string",
        ValueKind::Timestamp => "an RFC 3339 timestamp string",
        ValueKind::Date => "a YYYY-MM-DD date string",
        ValueKind::Json => "any JSON value",
        ValueKind::Vector => "an array of numbers",
    }
}

fn as_object(body: &Json) -> Result<&Map<String, Json>> {
    body.as_object()
        .ok_or_else(|| Error::invalid("the body must be a JSON object"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl::Entity;

    #[derive(udl::Entity, Clone)]
    #[udl(table = "notes", store = "postgres")]
    struct Note {
        #[udl(id, internal)]
        id: uuid::Uuid,
        #[udl(internal)]
        title: String,
        #[udl(internal)]
        score: Option<i64>,
    }

    #[test]
    fn unknown_fields_and_wrong_kinds_are_refused_without_echo() {
        let body = serde_json::json!({"title; DROP TABLE": "x"});
        let err = record_from_json(Note::meta(), &body).unwrap_err();
        assert!(!err.to_string().contains("DROP"), "{err}");
        let body = serde_json::json!({"score": "fake-secret-canary"});
        let err = record_from_json(Note::meta(), &body).unwrap_err();
        assert!(err.to_string().contains("score"), "{err}");
        assert!(!err.to_string().contains("canary"), "{err}");
    }

    #[test]
    fn a_record_round_trips() {
        let id = uuid::Uuid::new_v4();
        let body = serde_json::json!({"id": id.to_string(), "title": "t", "score": 3});
        let record = record_from_json(Note::meta(), &body).unwrap();
        assert_eq!(record_to_json(Note::meta(), &record), body);
        assert_eq!(
            id_from_path(Note::meta(), &id.to_string()).unwrap(),
            Value::Uuid(id)
        );
        assert!(id_from_path(Note::meta(), "not-a-uuid").is_err());
    }
}
