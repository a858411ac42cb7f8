//! udl values to CQL values and back, by the field's declared kind. Column types: text,
//! bigint, double, boolean, blob, uuid, timestamp, date, text (JSON), list<float> (vectors).

use chrono::{DateTime, NaiveDate, Utc};
use scylla::value::{CqlDate, CqlTimestamp, CqlValue};
use udl_core::{Error, ErrorKind, FieldMeta, Result, StoreKind, Value, ValueKind};

/// CQL's date: days since the epoch, offset by 2^31.
const DATE_EPOCH_OFFSET: i64 = 1 << 31;

fn unix_epoch_day() -> NaiveDate {
    DateTime::UNIX_EPOCH.date_naive()
}

/// The CQL value of `value` for a column of `field`'s kind (`None` is null).
pub fn to_cql(field: &FieldMeta, value: &Value) -> Result<Option<CqlValue>> {
    let cql = match value {
        Value::Null => return Ok(None),
        Value::Bool(b) => CqlValue::Boolean(*b),
        Value::Int(i) => CqlValue::BigInt(*i),
        Value::Float(f) => CqlValue::Double(*f),
        Value::Text(t) => CqlValue::Text(t.clone()),
        Value::Bytes(b) => CqlValue::Blob(b.clone()),
        Value::Uuid(u) => CqlValue::Uuid(*u),
        Value::Timestamp(t) => CqlValue::Timestamp(CqlTimestamp(t.timestamp_millis())),
        Value::Date(d) => {
            let days = (*d - unix_epoch_day()).num_days() + DATE_EPOCH_OFFSET;
            CqlValue::Date(CqlDate(u32::try_from(days).map_err(|_| {
                Error::invalid(format!("date of field {} is out of range", field.name))
            })?))
        }
        Value::Json(j) => CqlValue::Text(j.to_string()),
        Value::Vector(v) => CqlValue::List(v.iter().map(|x| CqlValue::Float(*x)).collect()),
    };
    Ok(Some(cql))
}

fn corrupt(field: &FieldMeta) -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        format!("column {} does not hold its declared type", field.name),
    )
    .with_store(StoreKind::SCYLLA)
}

/// The udl value of a column read for `field`.
pub fn from_cql(field: &FieldMeta, cql: Option<CqlValue>) -> Result<Value> {
    let Some(cql) = cql else {
        return Ok(Value::Null);
    };
    let value = match (field.kind, cql) {
        (ValueKind::Bool, CqlValue::Boolean(b)) => Value::Bool(b),
        (ValueKind::Int, CqlValue::BigInt(i)) => Value::Int(i),
        (ValueKind::Float, CqlValue::Double(f)) => Value::Float(f),
        (ValueKind::Text, CqlValue::Text(t)) => Value::Text(t),
        (ValueKind::Bytes, CqlValue::Blob(b)) => Value::Bytes(b),
        (ValueKind::Uuid, CqlValue::Uuid(u)) => Value::Uuid(u),
        (ValueKind::Timestamp, CqlValue::Timestamp(CqlTimestamp(ms))) => Value::Timestamp(
            DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| corrupt(field))?,
        ),
        (ValueKind::Date, CqlValue::Date(CqlDate(days))) => {
            let offset = i64::from(days) - DATE_EPOCH_OFFSET;
            Value::Date(
                unix_epoch_day()
                    .checked_add_signed(chrono::TimeDelta::days(offset))
                    .ok_or_else(|| corrupt(field))?,
            )
        }
        (ValueKind::Json, CqlValue::Text(t)) => {
            Value::Json(serde_json::from_str(&t).map_err(|_| corrupt(field))?)
        }
        (ValueKind::Vector, CqlValue::List(items)) => Value::Vector(
            items
                .into_iter()
                .map(|item| match item {
                    CqlValue::Float(x) => Ok(x),
                    _ => Err(corrupt(field)),
                })
                .collect::<Result<_>>()?,
        ),
        _ => return Err(corrupt(field)),
    };
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let cases = [
            (FieldMeta::of::<bool>("b"), Value::Bool(true)),
            (FieldMeta::of::<i64>("i"), Value::Int(-7)),
            (FieldMeta::of::<f64>("f"), Value::Float(2.5)),
            (
                FieldMeta::of::<String>("t"),
                Value::Text("fake ünïcode".into()),
            ),
            (FieldMeta::of::<Vec<u8>>("y"), Value::Bytes(vec![0, 255])),
            (
                FieldMeta::of::<uuid::Uuid>("u"),
                Value::Uuid(uuid::Uuid::new_v4()),
            ),
            (
                FieldMeta::of::<DateTime<Utc>>("ts"),
                Value::Timestamp(DateTime::from_timestamp_millis(1_764_000_000_123).unwrap()),
            ),
            (
                FieldMeta::of::<NaiveDate>("d"),
                Value::Date(NaiveDate::from_ymd_opt(1969, 7, 20).unwrap()),
            ),
            (
                FieldMeta::of::<serde_json::Value>("j"),
                Value::Json(serde_json::json!({"a": [1, null]})),
            ),
            (
                FieldMeta::of::<Vec<f32>>("v"),
                Value::Vector(vec![0.5, -1.0]),
            ),
            (FieldMeta::of::<Option<String>>("n"), Value::Null),
        ];
        for (field, value) in cases {
            let cql = to_cql(&field, &value).unwrap();
            assert_eq!(from_cql(&field, cql).unwrap(), value, "{}", field.name);
        }
        let text = FieldMeta::of::<String>("t");
        assert!(from_cql(&text, Some(CqlValue::Int(1))).is_err());
    }
}
