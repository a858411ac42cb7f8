//! Records as bytes for Redis: a JSON object of the entity's fields.

use udl_core::{EntityMeta, Record, Value};

/// Encodes every field present in `record`.
pub fn encode(record: &Record) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = record
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_json()))
        .collect();
    serde_json::Value::Object(object).to_string().into_bytes()
}

/// Decodes a record written by [`encode`] for `entity`; `None` when it does not fit (an
/// entry from an older shape of the entity is a miss, not an error).
pub fn decode(entity: &'static EntityMeta, bytes: &[u8]) -> Option<Record> {
    let json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let object = json.as_object()?;
    let mut record = Record::with_capacity(entity.fields.len());
    for field in entity.fields {
        let value = match object.get(field.name) {
            Some(v) => Value::from_json(field.kind, v).ok()?,
            None => Value::Null,
        };
        record.push(field.name, value);
    }
    Some(record)
}

/// Encodes a list of records.
pub fn encode_list(records: &[Record]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::from_slice(&encode(r)).unwrap_or(serde_json::Value::Null))
        .collect();
    serde_json::Value::Array(items).to_string().into_bytes()
}

/// Decodes a list written by [`encode_list`].
pub fn decode_list(entity: &'static EntityMeta, bytes: &[u8]) -> Option<Vec<Record>> {
    let json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    json.as_array()?
        .iter()
        .map(|item| decode(entity, item.to_string().as_bytes()))
        .collect()
}
