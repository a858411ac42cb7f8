//! A captured column's bytes as the value its field declares. The relay asks the server for
//! binary values, so each is read by its column type (OID) into the declared kind; a type the
//! relay cannot read for that kind is an error, never a guess.

use chrono::{DateTime, Days, NaiveDate};
use udl_core::{Error, ErrorKind, Result, Value, ValueKind};

mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const FLOAT4_ARRAY: u32 = 1021;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Whether a column of type `type_oid` can hold a field of `kind`.
pub fn readable(kind: ValueKind, type_oid: u32) -> bool {
    use oid::*;
    match kind {
        ValueKind::Text => matches!(type_oid, TEXT | VARCHAR | BPCHAR | NAME),
        ValueKind::Int => matches!(type_oid, INT2 | INT4 | INT8),
        ValueKind::Float => matches!(type_oid, FLOAT4 | FLOAT8),
        ValueKind::Bool => type_oid == BOOL,
        ValueKind::Uuid => type_oid == UUID,
        ValueKind::Timestamp => matches!(type_oid, TIMESTAMP | TIMESTAMPTZ),
        ValueKind::Date => type_oid == DATE,
        ValueKind::Bytes => type_oid == BYTEA,
        ValueKind::Json => matches!(type_oid, JSON | JSONB),
        ValueKind::Vector => type_oid == FLOAT4_ARRAY,
    }
}

fn unreadable(what: &str) -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        format!("a captured {what} value is not in its type's binary form"),
    )
}

fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| unreadable(what))
}

/// The value of a column of type `type_oid`, sent in binary, as a field of `kind`
/// ([`readable`] said yes).
pub fn read(kind: ValueKind, type_oid: u32, bytes: &[u8]) -> Result<Value> {
    use oid::*;
    Ok(match kind {
        ValueKind::Text => Value::Text(
            std::str::from_utf8(bytes)
                .map_err(|_| unreadable("text"))?
                .to_owned(),
        ),
        ValueKind::Int => Value::Int(match type_oid {
            INT2 => i16::from_be_bytes(fixed(bytes, "integer")?).into(),
            INT4 => i32::from_be_bytes(fixed(bytes, "integer")?).into(),
            _ => i64::from_be_bytes(fixed(bytes, "integer")?),
        }),
        ValueKind::Float => Value::Float(match type_oid {
            FLOAT4 => f32::from_be_bytes(fixed(bytes, "float")?).into(),
            _ => f64::from_be_bytes(fixed(bytes, "float")?),
        }),
        ValueKind::Bool => Value::Bool(fixed::<1>(bytes, "boolean")?[0] != 0),
        ValueKind::Uuid => Value::Uuid(uuid::Uuid::from_bytes(fixed(bytes, "uuid")?)),
        ValueKind::Timestamp => {
            let micros = i64::from_be_bytes(fixed(bytes, "timestamp")?);
            Value::Timestamp(
                DateTime::from_timestamp_micros(micros.saturating_add(PG_EPOCH_MICROS))
                    .ok_or_else(|| unreadable("timestamp"))?,
            )
        }
        ValueKind::Date => {
            let days = i32::from_be_bytes(fixed(bytes, "date")?);
            let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date");
            let date = if days >= 0 {
                epoch.checked_add_days(Days::new(days as u64))
            } else {
                epoch.checked_sub_days(Days::new(days.unsigned_abs() as u64))
            };
            Value::Date(date.ok_or_else(|| unreadable("date"))?)
        }
        ValueKind::Bytes => Value::Bytes(bytes.to_vec()),
        ValueKind::Json => {
            // jsonb's binary form is a version byte (1) and the text.
            let text = match (type_oid, bytes.split_first()) {
                (JSONB, Some((1, text))) => text,
                (JSONB, _) => return Err(unreadable("jsonb")),
                _ => bytes,
            };
            Value::Json(serde_json::from_slice(text).map_err(|_| unreadable("json"))?)
        }
        ValueKind::Vector => Value::Vector(float4_array(bytes)?),
    })
}

/// A one-dimensional `real[]` without nulls: header (dimensions, null flag, element type),
/// then length and lower bound, then each element as length and value.
fn float4_array(bytes: &[u8]) -> Result<Vec<f32>> {
    let word = |i: usize| -> Result<i32> {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|w| i32::from_be_bytes(w.try_into().expect("four bytes")))
            .ok_or_else(|| unreadable("real[]"))
    };
    let dimensions = word(0)?;
    if dimensions == 0 && bytes.len() == 12 {
        return Ok(Vec::new());
    }
    if dimensions != 1 || word(1)? != 0 || word(2)? != oid::FLOAT4 as i32 {
        return Err(unreadable("real[]"));
    }
    let len = usize::try_from(word(3)?).map_err(|_| unreadable("real[]"))?;
    let _lower_bound = word(4)?;
    let elements = &bytes[20..];
    if elements.len() != len * 8 {
        return Err(unreadable("real[]"));
    }
    elements
        .chunks_exact(8)
        .map(|e| {
            if e[..4] != 4i32.to_be_bytes() {
                return Err(unreadable("real[]"));
            }
            Ok(f32::from_be_bytes(e[4..].try_into().expect("four bytes")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_from_its_binary_form() {
        assert_eq!(
            read(ValueKind::Int, oid::INT4, &7i32.to_be_bytes()).unwrap(),
            Value::Int(7)
        );
        assert_eq!(
            read(ValueKind::Int, oid::INT2, &(-3i16).to_be_bytes()).unwrap(),
            Value::Int(-3)
        );
        assert_eq!(
            read(ValueKind::Float, oid::FLOAT4, &1.5f32.to_be_bytes()).unwrap(),
            Value::Float(1.5)
        );
        assert_eq!(
            read(ValueKind::Bool, oid::BOOL, &[1]).unwrap(),
            Value::Bool(true)
        );
        let at = read(ValueKind::Timestamp, oid::TIMESTAMPTZ, &0i64.to_be_bytes()).unwrap();
        assert_eq!(
            at,
            Value::Timestamp("2000-01-01T00:00:00Z".parse().unwrap())
        );
        let day = read(ValueKind::Date, oid::DATE, &(-1i32).to_be_bytes()).unwrap();
        assert_eq!(
            day,
            Value::Date(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap())
        );
        let json = read(ValueKind::Json, oid::JSONB, b"\x01{\"a\":1}").unwrap();
        assert_eq!(json, Value::Json(serde_json::json!({"a": 1})));
        let mut array = Vec::new();
        for w in [1i32, 0, oid::FLOAT4 as i32, 2, 1] {
            array.extend(w.to_be_bytes());
        }
        for f in [0.5f32, 2.0] {
            array.extend(4i32.to_be_bytes());
            array.extend(f.to_be_bytes());
        }
        assert_eq!(
            read(ValueKind::Vector, oid::FLOAT4_ARRAY, &array).unwrap(),
            Value::Vector(vec![0.5, 2.0])
        );
    }

    #[test]
    fn wrong_lengths_and_foreign_types_are_refused() {
        assert!(read(ValueKind::Int, oid::INT8, &[1, 2]).is_err());
        assert!(read(ValueKind::Uuid, oid::UUID, &[0; 15]).is_err());
        assert!(read(ValueKind::Json, oid::JSONB, b"\x02{}").is_err());
        assert!(read(ValueKind::Vector, oid::FLOAT4_ARRAY, &[0; 7]).is_err());
        assert!(!readable(ValueKind::Float, 1700), "numeric is not a float");
        assert!(!readable(ValueKind::Text, oid::BYTEA));
    }
}
