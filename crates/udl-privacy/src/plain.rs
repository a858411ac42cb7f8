//! A field value as the bytes that get encrypted, and back. The kind is not stored: it comes
//! from the entity's declaration, which is also what the ciphertext is bound to.

use chrono::{DateTime, Datelike as _, NaiveDate};
use udl_core::{Error, ErrorKind, Result, Value, ValueKind};

/// The bytes of a non-null `value`.
pub fn to_bytes(value: &Value) -> Result<Vec<u8>> {
    Ok(match value {
        Value::Text(s) => s.as_bytes().to_vec(),
        Value::Bytes(b) => b.clone(),
        Value::Int(i) => i.to_be_bytes().to_vec(),
        Value::Float(f) => f.to_bits().to_be_bytes().to_vec(),
        Value::Bool(b) => vec![u8::from(*b)],
        Value::Uuid(u) => u.as_bytes().to_vec(),
        Value::Timestamp(t) => t.timestamp_micros().to_be_bytes().to_vec(),
        Value::Date(d) => d.num_days_from_ce().to_be_bytes().to_vec(),
        Value::Json(j) => serde_json::to_vec(j)
            .map_err(|_| Error::new(ErrorKind::Internal, "a JSON value did not serialise"))?,
        // Fields never seal vectors (similarity search needs them), but the change history
        // seals every PHI value, an embedding included.
        Value::Vector(v) => {
            let mut out = Vec::with_capacity(v.len() * 4);
            udl_core::put_vector(&mut out, v);
            out
        }
        Value::Null => {
            return Err(Error::new(
                ErrorKind::Internal,
                "null values are never encrypted",
            ))
        }
    })
}

/// A record id (or patient id) as text for logs and history rows: ids are uuids, text or
/// integers; anything else is shown as `<id>`, never as its value.
pub fn id_text(id: &Value) -> String {
    match id {
        Value::Uuid(u) => u.to_string(),
        Value::Text(t) => t.clone(),
        Value::Int(i) => i.to_string(),
        _ => "<id>".to_owned(),
    }
}

fn undecodable() -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        "a decrypted field does not decode as its declared kind",
    )
}

fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| undecodable())
}

/// The value of kind `kind` whose bytes are `bytes`.
pub fn from_bytes(kind: ValueKind, bytes: Vec<u8>) -> Result<Value> {
    Ok(match kind {
        ValueKind::Text => Value::Text(String::from_utf8(bytes).map_err(|_| undecodable())?),
        ValueKind::Bytes => Value::Bytes(bytes),
        ValueKind::Int => Value::Int(i64::from_be_bytes(array(&bytes)?)),
        ValueKind::Float => Value::Float(f64::from_bits(u64::from_be_bytes(array(&bytes)?))),
        ValueKind::Bool => Value::Bool(array::<1>(&bytes)?[0] != 0),
        ValueKind::Uuid => Value::Uuid(uuid::Uuid::from_bytes(array(&bytes)?)),
        ValueKind::Timestamp => Value::Timestamp(
            DateTime::from_timestamp_micros(i64::from_be_bytes(array(&bytes)?))
                .ok_or_else(undecodable)?,
        ),
        ValueKind::Date => Value::Date(
            NaiveDate::from_num_days_from_ce_opt(i32::from_be_bytes(array(&bytes)?))
                .ok_or_else(undecodable)?,
        ),
        ValueKind::Json => Value::Json(serde_json::from_slice(&bytes).map_err(|_| undecodable())?),
        ValueKind::Vector => Value::Vector(udl_core::read_vector(&bytes).ok_or_else(undecodable)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn every_encryptable_kind_round_trips() {
        let values = [
            Value::Text("fake ünïcode".into()),
            Value::Bytes(vec![0, 255]),
            Value::Int(-42),
            Value::Float(1.5),
            Value::Bool(true),
            Value::Uuid(uuid::Uuid::new_v4()),
            Value::Timestamp(chrono::Utc.timestamp_opt(1_750_000_000, 123_000).unwrap()),
            Value::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
            Value::Json(serde_json::json!({"a": [1, null]})),
        ];
        for value in values {
            let kind = value.kind().unwrap();
            assert_eq!(from_bytes(kind, to_bytes(&value).unwrap()).unwrap(), value);
        }
    }

    #[test]
    fn bytes_of_the_wrong_length_are_corruption() {
        let err = from_bytes(ValueKind::Int, vec![1, 2]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DataCorruption);
    }
}
