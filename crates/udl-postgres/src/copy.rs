//! Bulk insert with `COPY ... FROM STDIN` in text format: one statement, so all or nothing.

use std::fmt::Write as _;
use udl_core::op;

use sqlx::PgConnection;
use udl_core::{EntityMeta, Record, Result, Value};

use crate::error::classify;
use crate::sql::{check_storable, column_list, ident};

/// Bytes buffered before a chunk is sent to the server.
const CHUNK_BYTES: usize = 1 << 20;

/// Writes `records` with one COPY. Every record is checked before anything is sent, so an
/// unstorable value fails the call with nothing written.
pub async fn copy_records(
    conn: &mut PgConnection,
    entity: &'static EntityMeta,
    records: Vec<Record>,
) -> Result<u64> {
    let op = op::CREATE_MANY;
    for record in &records {
        for field in entity.fields {
            if let Some(value) = record.get(field.name) {
                check_storable(entity, field, value).map_err(|e| e.with_operation(op))?;
            }
        }
    }
    // Identifiers come from entity metadata only; values travel as COPY data.
    let statement = format!(
        "COPY {} ({}) FROM STDIN (FORMAT text)",
        ident(entity.name),
        column_list(entity)
    );
    let mut copy = conn
        .copy_in_raw(&statement)
        .await
        .map_err(|e| classify(&e, op))?;
    let mut buf = String::with_capacity(CHUNK_BYTES + 4096);
    for record in &records {
        encode_row(&mut buf, entity, record);
        if buf.len() >= CHUNK_BYTES {
            if let Err(e) = copy.send(buf.as_bytes()).await {
                let _ = copy.abort("udl: sending COPY data failed").await;
                return Err(classify(&e, op));
            }
            buf.clear();
        }
    }
    if !buf.is_empty() {
        if let Err(e) = copy.send(buf.as_bytes()).await {
            let _ = copy.abort("udl: sending COPY data failed").await;
            return Err(classify(&e, op));
        }
    }
    copy.finish().await.map_err(|e| classify(&e, op))
}

/// Appends one record as a line of COPY text format.
pub fn encode_row(buf: &mut String, entity: &EntityMeta, record: &Record) {
    for (i, field) in entity.fields.iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        encode_value(buf, record.get(field.name).unwrap_or(&Value::Null));
    }
    buf.push('\n');
}

fn encode_value(buf: &mut String, value: &Value) {
    match value {
        Value::Null => buf.push_str("\\N"),
        Value::Bool(b) => buf.push(if *b { 't' } else { 'f' }),
        Value::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        Value::Float(f) if f.is_nan() => buf.push_str("NaN"),
        Value::Float(f) if f.is_infinite() => {
            buf.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => {
            let _ = write!(buf, "{f}");
        }
        Value::Text(s) => escape(buf, s),
        Value::Bytes(b) => {
            // bytea hex form `\x..`, with the backslash itself escaped for COPY.
            buf.push_str("\\\\x");
            buf.push_str(&hex::encode(b));
        }
        Value::Uuid(u) => {
            let _ = write!(buf, "{u}");
        }
        Value::Timestamp(t) => {
            buf.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        }
        Value::Date(d) => {
            let _ = write!(buf, "{d}");
        }
        Value::Json(j) => escape(buf, &j.to_string()),
        // Array literal of finite floats (validation refuses NaN and infinities).
        Value::Vector(v) => {
            buf.push('{');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                let _ = write!(buf, "{x}");
            }
            buf.push('}');
        }
    }
}

/// COPY text escaping: backslash, and the characters that delimit fields and rows.
fn escape(buf: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_escapes_delimiters() {
        let mut buf = String::new();
        escape(&mut buf, "a\tb\nc\\d\re");
        assert_eq!(buf, "a\\tb\\nc\\\\d\\re");
        let mut buf = String::new();
        encode_value(&mut buf, &Value::Bytes(vec![0xde, 0xad]));
        assert_eq!(buf, "\\\\xdead");
    }
}
