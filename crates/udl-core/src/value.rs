//! Backend-neutral field values and the conversion between Rust field types and them.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::error::{Error, ErrorKind};

/// One field value as every backend sees it.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// Absent value (SQL NULL, BSON null, missing Redis hash field).
    Null,
    /// Boolean.
    Bool(bool),
    /// Signed 64-bit integer; narrower Rust integers widen into it.
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// UUID.
    Uuid(Uuid),
    /// Instant in UTC. Every store keeps at least millisecond precision (PostgreSQL keeps
    /// microseconds; MongoDB and CQL milliseconds).
    Timestamp(DateTime<Utc>),
    /// Calendar date without time zone.
    Date(NaiveDate),
    /// Arbitrary JSON document.
    Json(serde_json::Value),
    /// Embedding or other dense vector; every component finite.
    Vector(Vec<f32>),
}

/// The type of a field, declared once on the entity and checked against every value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// [`Value::Bool`].
    Bool,
    /// [`Value::Int`].
    Int,
    /// [`Value::Float`].
    Float,
    /// [`Value::Text`].
    Text,
    /// [`Value::Bytes`].
    Bytes,
    /// [`Value::Uuid`].
    Uuid,
    /// [`Value::Timestamp`].
    Timestamp,
    /// [`Value::Date`].
    Date,
    /// [`Value::Json`].
    Json,
    /// [`Value::Vector`].
    Vector,
}

impl Value {
    /// The value's size as a store receives it, near enough to bound it: text and bytes by
    /// length, JSON as text, a vector at four bytes a component, fixed-size values by their
    /// width, null as nothing.
    pub fn encoded_len(&self) -> usize {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Date(_) => 4,
            Value::Int(_) | Value::Float(_) | Value::Timestamp(_) => 8,
            Value::Uuid(_) => 16,
            Value::Text(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Json(j) => j.to_string().len(),
            Value::Vector(v) => v.len() * 4,
        }
    }

    /// The kind of this value, or `None` for [`Value::Null`].
    pub fn kind(&self) -> Option<ValueKind> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => ValueKind::Bool,
            Value::Int(_) => ValueKind::Int,
            Value::Float(_) => ValueKind::Float,
            Value::Text(_) => ValueKind::Text,
            Value::Bytes(_) => ValueKind::Bytes,
            Value::Uuid(_) => ValueKind::Uuid,
            Value::Timestamp(_) => ValueKind::Timestamp,
            Value::Date(_) => ValueKind::Date,
            Value::Json(_) => ValueKind::Json,
            Value::Vector(_) => ValueKind::Vector,
        })
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Encodes the value as JSON in the shape [`Value::from_json`] reads back for its kind.
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => J::from(*f),
            Value::Text(s) => J::String(s.clone()),
            Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Uuid(u) => J::String(u.to_string()),
            Value::Timestamp(t) => {
                J::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
            Value::Date(d) => J::String(d.to_string()),
            Value::Json(j) => j.clone(),
            Value::Vector(v) => J::Array(v.iter().map(|x| J::from(f64::from(*x))).collect()),
        }
    }

    /// Decodes a value of `kind` from the JSON shape written by [`Value::to_json`].
    pub fn from_json(kind: ValueKind, json: &serde_json::Value) -> Result<Value, Error> {
        use base64::Engine as _;
        use serde_json::Value as J;
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!("expected a {kind:?} value"),
            )
        };
        Ok(match (kind, json) {
            (_, J::Null) => Value::Null,
            (ValueKind::Bool, J::Bool(b)) => Value::Bool(*b),
            (ValueKind::Int, J::Number(n)) => Value::Int(n.as_i64().ok_or_else(bad)?),
            (ValueKind::Float, J::Number(n)) => Value::Float(n.as_f64().ok_or_else(bad)?),
            (ValueKind::Text, J::String(s)) => Value::Text(s.clone()),
            (ValueKind::Bytes, J::String(s)) => Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| bad())?,
            ),
            (ValueKind::Uuid, J::String(s)) => Value::Uuid(s.parse().map_err(|_| bad())?),
            (ValueKind::Timestamp, J::String(s)) => Value::Timestamp(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|_| bad())?
                    .with_timezone(&Utc),
            ),
            (ValueKind::Date, J::String(s)) => Value::Date(s.parse().map_err(|_| bad())?),
            (ValueKind::Json, j) => Value::Json(j.clone()),
            (ValueKind::Vector, J::Array(items)) => Value::Vector(
                items
                    .iter()
                    .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad()),
        })
    }
}

/// Values may hold PHI, so `Debug` shows only the kind and size, never the content.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Text(s) => write!(f, "Text(<{} bytes>)", s.len()),
            Value::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            Value::Vector(v) => write!(f, "Vector(<{} dimensions>)", v.len()),
            other => write!(
                f,
                "{:?}(<redacted>)",
                other.kind().unwrap_or(ValueKind::Json)
            ),
        }
    }
}

/// A Rust type that can be an entity field: its kind, nullability and conversions.
pub trait FieldValue: Sized {
    /// The kind stored for this type.
    const KIND: ValueKind;
    /// Whether the field may hold [`Value::Null`] (true only for `Option<T>`).
    const NULLABLE: bool = false;
    /// Converts into a neutral value.
    fn into_value(self) -> Value;
    /// Converts back from a neutral value; the error names no value content.
    fn from_value(value: Value) -> Result<Self, Error>;
}

fn wrong_kind(expected: ValueKind, got: &Value) -> Error {
    match got.kind() {
        Some(kind) => Error::new(
            ErrorKind::InvalidInput,
            format!("expected a {expected:?} value, got {kind:?}"),
        ),
        None => Error::new(
            ErrorKind::InvalidInput,
            format!("expected a {expected:?} value, got null"),
        ),
    }
}

macro_rules! direct_field_value {
    ($ty:ty, $kind:ident) => {
        impl FieldValue for $ty {
            const KIND: ValueKind = ValueKind::$kind;
            fn into_value(self) -> Value {
                Value::$kind(self)
            }
            fn from_value(value: Value) -> Result<Self, Error> {
                match value {
                    Value::$kind(v) => Ok(v),
                    other => Err(wrong_kind(ValueKind::$kind, &other)),
                }
            }
        }
        impl From<$ty> for Value {
            fn from(v: $ty) -> Value {
                Value::$kind(v)
            }
        }
    };
}

direct_field_value!(bool, Bool);
direct_field_value!(i64, Int);
direct_field_value!(f64, Float);
direct_field_value!(String, Text);
direct_field_value!(Vec<u8>, Bytes);
direct_field_value!(Uuid, Uuid);
direct_field_value!(DateTime<Utc>, Timestamp);
direct_field_value!(NaiveDate, Date);
direct_field_value!(serde_json::Value, Json);
direct_field_value!(Vec<f32>, Vector);

/// A field stored as JSON but typed in Rust: `messages: Json<Vec<Message>>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize + serde::de::DeserializeOwned> FieldValue for Json<T> {
    const KIND: ValueKind = ValueKind::Json;
    /// A value serde cannot express as JSON (a map with non-text keys) becomes null, which
    /// validation then refuses for a required field: loud, never silently stored.
    fn into_value(self) -> Value {
        Value::Json(serde_json::to_value(&self.0).unwrap_or(serde_json::Value::Null))
    }
    fn from_value(value: Value) -> Result<Self, Error> {
        match value {
            Value::Json(j) => serde_json::from_value(j).map(Json).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "JSON does not match the field's type",
                )
            }),
            other => Err(wrong_kind(ValueKind::Json, &other)),
        }
    }
}

impl FieldValue for i32 {
    const KIND: ValueKind = ValueKind::Int;
    fn into_value(self) -> Value {
        Value::Int(self.into())
    }
    fn from_value(value: Value) -> Result<Self, Error> {
        let wide = i64::from_value(value)?;
        i32::try_from(wide)
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "integer out of range for i32"))
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v.into())
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl<T: FieldValue> FieldValue for Option<T> {
    const KIND: ValueKind = T::KIND;
    const NULLABLE: bool = true;
    fn into_value(self) -> Value {
        self.map_or(Value::Null, T::into_value)
    }
    fn from_value(value: Value) -> Result<Self, Error> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_content() {
        let shown = format!("{:?}", Value::Text("fake-patient-name".into()));
        assert!(!shown.contains("fake-patient-name"), "{shown}");
        assert!(!format!("{:?}", Value::Int(424242)).contains("424242"));
    }

    #[test]
    fn json_round_trip_keeps_each_kind() {
        let values = [
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(1.5),
            Value::Text("x'; --".into()),
            Value::Bytes(vec![0, 255]),
            Value::Uuid(Uuid::nil()),
            Value::Timestamp(DateTime::from_timestamp(1_700_000_000, 123_000).unwrap()),
            Value::Date(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()),
            Value::Json(serde_json::json!({"a": [1]})),
        ];
        for v in values {
            let kind = v.kind().unwrap();
            assert_eq!(Value::from_json(kind, &v.to_json()).unwrap(), v);
        }
    }

    #[test]
    fn typed_json_round_trips_and_rejects_other_shapes() {
        let v = Json(vec![1_u8, 2]).into_value();
        assert_eq!(Json::<Vec<u8>>::from_value(v).unwrap(), Json(vec![1, 2]));
        let wrong = Value::Json(serde_json::json!({"not": "a list"}));
        assert!(Json::<Vec<u8>>::from_value(wrong).is_err());
    }

    #[test]
    fn narrowing_out_of_range_is_an_error() {
        assert!(i32::from_value(Value::Int(i64::MAX)).is_err());
        assert_eq!(i32::from_value(Value::Int(5)).unwrap(), 5);
    }
}
