//! Records as compact bytes for Redis: the entity's fields in declaration order, each a
//! tag byte and a fixed or length-prefixed payload. Binary rather than JSON because an L2 hit
//! must cost little more than the Redis round trip itself.

use chrono::{DateTime, NaiveDate, Utc};
use udl_core::{EntityMeta, Record, Value};

/// Format version; an entry of another version (or field count) is a miss.
const FORMAT: u8 = 1;

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Text(s) => {
            out.push(4);
            put_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(5);
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
        Value::Uuid(u) => {
            out.push(6);
            out.extend_from_slice(u.as_bytes());
        }
        Value::Timestamp(t) => {
            out.push(7);
            out.extend_from_slice(&t.timestamp_micros().to_le_bytes());
        }
        Value::Date(d) => {
            out.push(8);
            out.extend_from_slice(&chrono::Datelike::num_days_from_ce(d).to_le_bytes());
        }
        Value::Json(j) => {
            let text = j.to_string();
            out.push(9);
            put_len(out, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        Value::Vector(v) => {
            out.push(10);
            put_len(out, v.len());
            udl_core::put_vector(out, v);
        }
    }
}

/// Encodes `record`'s values in `entity`'s field order.
pub fn encode(entity: &EntityMeta, record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT);
    out.extend_from_slice(&(entity.fields.len() as u16).to_le_bytes());
    for field in entity.fields {
        encode_value(&mut out, record.get(field.name).unwrap_or(&Value::Null));
    }
    out
}

/// Reads values from a byte slice, failing (`None`) on anything short or unknown.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn len(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.array()?) as usize)
    }

    fn value(&mut self) -> Option<Value> {
        let [tag] = self.array::<1>()?;
        Some(match tag {
            0 => Value::Null,
            1 => Value::Bool(self.array::<1>()?[0] != 0),
            2 => Value::Int(i64::from_le_bytes(self.array()?)),
            3 => Value::Float(f64::from_le_bytes(self.array()?)),
            4 => {
                let n = self.len()?;
                Value::Text(String::from_utf8(self.take(n)?.to_vec()).ok()?)
            }
            5 => {
                let n = self.len()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            6 => Value::Uuid(uuid::Uuid::from_bytes(self.array()?)),
            7 => Value::Timestamp(DateTime::<Utc>::from_timestamp_micros(i64::from_le_bytes(
                self.array()?,
            ))?),
            8 => Value::Date(NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(
                self.array()?,
            ))?),
            9 => {
                let n = self.len()?;
                Value::Json(serde_json::from_slice(self.take(n)?).ok()?)
            }
            10 => {
                let n = self.len()?;
                let bytes = self.take(n.checked_mul(4)?)?;
                Value::Vector(udl_core::read_vector(bytes)?)
            }
            _ => return None,
        })
    }
}

/// Decodes an entry written by [`encode`] for `entity`; `None` when it does not fit (an
/// entry from an older shape of the entity is a miss, not an error).
pub fn decode(entity: &'static EntityMeta, bytes: &[u8]) -> Option<Record> {
    let mut r = Reader(bytes);
    let [format] = r.array::<1>()?;
    let count = u16::from_le_bytes(r.array()?) as usize;
    if format != FORMAT || count != entity.fields.len() {
        return None;
    }
    let mut record = Record::with_capacity(count);
    for field in entity.fields {
        let value = r.value()?;
        if value.kind().is_some_and(|k| k != field.kind) {
            return None;
        }
        record.push(field.name, value);
    }
    r.0.is_empty().then_some(record)
}

/// Encodes a list of records: a count, then each record length-prefixed.
pub fn encode_list(entity: &EntityMeta, records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    put_len(&mut out, records.len());
    for record in records {
        let one = encode(entity, record);
        put_len(&mut out, one.len());
        out.extend_from_slice(&one);
    }
    out
}

/// Decodes a list written by [`encode_list`].
pub fn decode_list(entity: &'static EntityMeta, bytes: &[u8]) -> Option<Vec<Record>> {
    let mut r = Reader(bytes);
    let count = r.len()?;
    let mut out = Vec::with_capacity(count.min(10_000));
    for _ in 0..count {
        let n = r.len()?;
        out.push(decode(entity, r.take(n)?)?);
    }
    r.0.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl_core::FieldMeta;

    static ALL: EntityMeta = EntityMeta {
        name: "all_kinds",
        fields: &[
            FieldMeta::of::<uuid::Uuid>("id"),
            FieldMeta::of::<Option<String>>("text"),
            FieldMeta::of::<i64>("int"),
            FieldMeta::of::<f64>("float"),
            FieldMeta::of::<bool>("flag"),
            FieldMeta::of::<Vec<u8>>("bytes"),
            FieldMeta::of::<DateTime<Utc>>("at"),
            FieldMeta::of::<NaiveDate>("day"),
            FieldMeta::of::<serde_json::Value>("json"),
            FieldMeta::of::<Vec<f32>>("vector"),
        ],
        id_field: "id",
        version_field: None,
        indexes: &[],
        partition_key: &[],
        clustering_key: &[],
        store: None,
        cache: udl_core::CachePolicy::NONE,
    };

    fn sample() -> Record {
        let mut r = Record::with_capacity(10);
        r.push("id", Value::Uuid(uuid::Uuid::new_v4()));
        r.push("text", Value::Null);
        r.push("int", Value::Int(-42));
        r.push("float", Value::Float(2.5));
        r.push("flag", Value::Bool(true));
        r.push("bytes", Value::Bytes(vec![0, 255]));
        r.push(
            "at",
            Value::Timestamp(DateTime::from_timestamp_micros(1_760_000_000_123_456).unwrap()),
        );
        r.push(
            "day",
            Value::Date(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()),
        );
        r.push("json", Value::Json(serde_json::json!({"a": [1, null]})));
        r.push("vector", Value::Vector(vec![0.5, -1.0]));
        r
    }

    #[test]
    fn every_kind_round_trips_and_damage_is_a_miss() {
        let record = sample();
        let bytes = encode(&ALL, &record);
        assert_eq!(decode(&ALL, &bytes), Some(record.clone()));
        assert_eq!(decode(&ALL, &bytes[..bytes.len() - 1]), None);
        let list = encode_list(&ALL, &[record.clone(), record.clone()]);
        assert_eq!(decode_list(&ALL, &list), Some(vec![record.clone(), record]));
    }
}
