//! Neutral values to BSON and back, and the checks documents must pass before they are sent.

use chrono::{DateTime, NaiveDate, Utc};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, RawBsonRef, RawDocument};
use udl_core::{EntityMeta, Error, ErrorKind, FieldMeta, Record, Result, Value, ValueKind};

/// Name of a field inside stored documents: the id field is `_id`.
pub fn doc_key(entity: &EntityMeta, field: &str) -> &'static str {
    match entity.field(field) {
        Some(f) if f.name == entity.id_field => "_id",
        Some(f) => f.name,
        None => "_invalid",
    }
}

/// Deepest JSON nesting accepted inside a field (BSON itself stops at 100 levels).
const MAX_JSON_DEPTH: usize = 64;

/// Largest document MongoDB stores.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// Converts one value for `field`; JSON is checked for keys MongoDB cannot hold.
pub fn to_bson(entity: &EntityMeta, field: &FieldMeta, value: Value) -> Result<Bson> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(b),
        Value::Int(i) => Bson::Int64(i),
        Value::Float(f) => Bson::Double(f),
        Value::Text(s) => Bson::String(s),
        Value::Bytes(b) => Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: b,
        }),
        Value::Uuid(u) => Bson::Binary(Binary {
            subtype: BinarySubtype::Uuid,
            bytes: u.as_bytes().to_vec(),
        }),
        Value::Timestamp(t) => {
            Bson::DateTime(mongodb::bson::DateTime::from_millis(t.timestamp_millis()))
        }
        // BSON has no calendar date; ISO text sorts and compares correctly.
        Value::Date(d) => Bson::String(d.format("%Y-%m-%d").to_string()),
        Value::Json(j) => {
            check_json(entity, field, &j, 0)?;
            json_to_bson(j)
        }
        Value::Vector(v) => Bson::Array(v.into_iter().map(|x| Bson::Double(x.into())).collect()),
    })
}

fn check_json(
    entity: &EntityMeta,
    field: &FieldMeta,
    j: &serde_json::Value,
    depth: usize,
) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::invalid(format!(
            "entity {}: field {} {what}",
            entity.name, field.name
        )))
    };
    if depth > MAX_JSON_DEPTH {
        return refuse(&format!("nests deeper than {MAX_JSON_DEPTH} levels"));
    }
    match j {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k.starts_with('$') || k.contains('.') || k.contains('\0') {
                    return refuse("has a key starting with '$' or containing '.' or NUL");
                }
                check_json(entity, field, v, depth + 1)?;
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_json(entity, field, v, depth + 1)),
        _ => Ok(()),
    }
}

fn json_to_bson(j: serde_json::Value) -> Bson {
    match j {
        serde_json::Value::Null => Bson::Null,
        serde_json::Value::Bool(b) => Bson::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Bson::String(s),
        serde_json::Value::Array(items) => {
            Bson::Array(items.into_iter().map(json_to_bson).collect())
        }
        serde_json::Value::Object(map) => {
            Bson::Document(map.into_iter().map(|(k, v)| (k, json_to_bson(v))).collect())
        }
    }
}

fn bson_to_json(b: Bson) -> Option<serde_json::Value> {
    Some(match b {
        Bson::Null => serde_json::Value::Null,
        Bson::Boolean(b) => serde_json::Value::Bool(b),
        Bson::Int32(i) => i.into(),
        Bson::Int64(i) => i.into(),
        Bson::Double(f) => serde_json::Number::from_f64(f).map(serde_json::Value::Number)?,
        Bson::String(s) => serde_json::Value::String(s),
        Bson::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(bson_to_json).collect::<Option<_>>()?)
        }
        Bson::Document(d) => serde_json::Value::Object(
            d.into_iter()
                .map(|(k, v)| bson_to_json(v).map(|v| (k, v)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// Converts a stored value back to the field's kind.
pub fn from_bson(kind: ValueKind, b: Bson) -> Option<Value> {
    Some(match (kind, b) {
        (_, Bson::Null) => Value::Null,
        (ValueKind::Bool, Bson::Boolean(b)) => Value::Bool(b),
        (ValueKind::Int, Bson::Int64(i)) => Value::Int(i),
        (ValueKind::Int, Bson::Int32(i)) => Value::Int(i.into()),
        (ValueKind::Float, Bson::Double(f)) => Value::Float(f),
        (ValueKind::Float, Bson::Int64(i)) => Value::Float(i as f64),
        (ValueKind::Float, Bson::Int32(i)) => Value::Float(i.into()),
        (ValueKind::Text, Bson::String(s)) => Value::Text(s),
        (ValueKind::Bytes, Bson::Binary(b)) => Value::Bytes(b.bytes),
        (ValueKind::Uuid, Bson::Binary(b)) => Value::Uuid(uuid::Uuid::from_slice(&b.bytes).ok()?),
        (ValueKind::Timestamp, Bson::DateTime(t)) => Value::Timestamp(
            DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis())?,
        ),
        (ValueKind::Date, Bson::String(s)) => {
            Value::Date(NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()?)
        }
        (ValueKind::Json, b) => Value::Json(bson_to_json(b)?),
        (ValueKind::Vector, Bson::Array(items)) => Value::Vector(
            items
                .into_iter()
                .map(|x| match x {
                    Bson::Double(f) => Some(f as f32),
                    Bson::Int32(i) => Some(i as f32),
                    Bson::Int64(i) => Some(i as f32),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// The document storing `record`; every field present, missing ones as null.
pub fn document(entity: &'static EntityMeta, mut record: Record) -> Result<Document> {
    let mut doc = Document::new();
    for field in entity.fields {
        let value = record.take(field.name).unwrap_or(Value::Null);
        doc.insert(doc_key(entity, field.name), to_bson(entity, field, value)?);
    }
    check_size(entity, &doc)?;
    Ok(doc)
}

/// Refuses documents over MongoDB's 16 MB limit before they are sent.
pub fn check_size(entity: &EntityMeta, doc: &Document) -> Result<()> {
    let mut bytes = Vec::new();
    doc.to_writer(&mut bytes).map_err(|_| {
        Error::invalid(format!(
            "entity {}: document cannot be encoded",
            entity.name
        ))
    })?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(format!(
            "entity {}: document is {} bytes, over MongoDB's limit of {MAX_DOCUMENT_BYTES}",
            entity.name,
            bytes.len()
        )));
    }
    Ok(())
}

/// Converts a stored value, read in place from the server's bytes, to the field's kind:
/// scalars, strings and binaries directly, anything else through an owned [`Bson`].
pub fn from_raw(kind: ValueKind, raw: RawBsonRef<'_>) -> Option<Value> {
    Some(match (kind, raw) {
        (_, RawBsonRef::Null) => Value::Null,
        (ValueKind::Bool, RawBsonRef::Boolean(b)) => Value::Bool(b),
        (ValueKind::Int, RawBsonRef::Int64(i)) => Value::Int(i),
        (ValueKind::Int, RawBsonRef::Int32(i)) => Value::Int(i.into()),
        (ValueKind::Float, RawBsonRef::Double(f)) => Value::Float(f),
        (ValueKind::Text, RawBsonRef::String(s)) => Value::Text(s.to_owned()),
        (ValueKind::Bytes, RawBsonRef::Binary(b)) => Value::Bytes(b.bytes.to_vec()),
        (ValueKind::Uuid, RawBsonRef::Binary(b)) => {
            Value::Uuid(uuid::Uuid::from_slice(b.bytes).ok()?)
        }
        (ValueKind::Timestamp, RawBsonRef::DateTime(t)) => Value::Timestamp(
            DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis())?,
        ),
        (kind, raw) => return from_bson(kind, Bson::try_from(raw).ok()?),
    })
}

/// The record stored in `doc` as the server sent it, in the entity's field order: values
/// are read in place, without building a [`Document`] first.
pub fn raw_record(entity: &'static EntityMeta, doc: &RawDocument) -> Result<Record> {
    let mut record = Record::with_capacity(entity.fields.len());
    for field in entity.fields {
        let value = match doc.get(doc_key(entity, field.name)) {
            Ok(None) => Some(Value::Null),
            Ok(Some(stored)) => from_raw(field.kind, stored),
            Err(_) => None,
        };
        record.push(field.name, value.ok_or_else(|| not_a(entity, field))?);
    }
    Ok(record)
}

fn not_a(entity: &EntityMeta, field: &FieldMeta) -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        format!(
            "entity {}: stored field {} does not hold a {:?}",
            entity.name, field.name, field.kind
        ),
    )
    .with_store(udl_core::StoreKind::MONGO)
}

/// The record stored in `doc`, in the entity's field order.
pub fn record(entity: &'static EntityMeta, mut doc: Document) -> Result<Record> {
    let mut record = Record::with_capacity(entity.fields.len());
    for field in entity.fields {
        let stored = doc
            .remove(doc_key(entity, field.name))
            .unwrap_or(Bson::Null);
        let value = from_bson(field.kind, stored).ok_or_else(|| not_a(entity, field))?;
        record.push(field.name, value);
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    static META: EntityMeta = EntityMeta {
        name: "things",
        fields: &[
            FieldMeta::of::<i64>("id"),
            FieldMeta::of::<serde_json::Value>("attrs"),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: udl_core::CachePolicy::NONE,
    };

    #[test]
    fn hostile_json_keys_and_depth_are_refused() {
        let field = &META.fields[1];
        for bad in [
            serde_json::json!({"$where": "1"}),
            serde_json::json!({"a": {"b.c": 1}}),
        ] {
            assert!(to_bson(&META, field, Value::Json(bad)).is_err());
        }
        let mut deep = serde_json::json!(1);
        for _ in 0..100 {
            deep = serde_json::json!([deep]);
        }
        assert!(to_bson(&META, field, Value::Json(deep)).is_err());
    }

    #[test]
    fn values_round_trip() {
        let values = [
            (ValueKind::Uuid, Value::Uuid(uuid::Uuid::new_v4())),
            (
                ValueKind::Date,
                Value::Date(NaiveDate::from_ymd_opt(2026, 2, 3).unwrap()),
            ),
            (
                ValueKind::Json,
                Value::Json(serde_json::json!({"a": [1, 2.5, null, "x"]})),
            ),
            (ValueKind::Bytes, Value::Bytes(vec![0, 255])),
        ];
        let field = &META.fields[1];
        for (kind, v) in values {
            assert_eq!(
                from_bson(kind, to_bson(&META, field, v.clone()).unwrap()),
                Some(v)
            );
        }
    }

    #[test]
    fn values_read_in_place_equal_values_read_from_a_document() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(2.5),
            Value::Text("fake text".into()),
            Value::Uuid(uuid::Uuid::new_v4()),
            Value::Bytes(vec![0, 255]),
            Value::Timestamp(DateTime::<Utc>::from_timestamp_millis(1_750_000_000_123).unwrap()),
            Value::Date(NaiveDate::from_ymd_opt(2026, 2, 3).unwrap()),
            Value::Json(serde_json::json!({"a": [1, 2.5, null, "x"]})),
            Value::Vector(vec![0.5, -1.0]),
        ];
        let field = &META.fields[1];
        for v in values {
            let kind = v.kind().unwrap_or(ValueKind::Json);
            let stored = to_bson(&META, field, v.clone()).unwrap();
            let doc = mongodb::bson::doc! { "v": stored.clone() };
            let raw = mongodb::bson::RawDocumentBuf::from_document(&doc).unwrap();
            let in_place = from_raw(kind, raw.get("v").unwrap().unwrap());
            assert_eq!(in_place, from_bson(kind, stored), "{v:?}");
            assert_eq!(in_place, Some(v));
        }
    }

    #[test]
    fn a_record_read_in_place_equals_one_read_from_its_document() {
        let mut written = Record::with_capacity(2);
        written.push("id", Value::Int(3));
        written.push("attrs", Value::Json(serde_json::json!({"k": "fake"})));
        let doc = document(&META, written.clone()).unwrap();
        let raw = mongodb::bson::RawDocumentBuf::from_document(&doc).unwrap();
        assert_eq!(raw_record(&META, &raw).unwrap(), written);
        assert_eq!(record(&META, doc).unwrap(), written);

        let wrong = mongodb::bson::doc! { "_id": "not an integer", "attrs": {} };
        let raw = mongodb::bson::RawDocumentBuf::from_document(&wrong).unwrap();
        let refused = raw_record(&META, &raw).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::DataCorruption);
    }
}
