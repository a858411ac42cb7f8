//! Binding neutral values as typed parameters and decoding rows back into records.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Column, Row, TypeInfo};
use udl_core::{EntityMeta, Error, ErrorKind, Record, Result, Value, ValueKind};
use uuid::Uuid;

/// Builds the argument list. Nulls are bound with the field's type so PostgreSQL never has
/// to guess a parameter type.
pub fn arguments(params: Vec<(ValueKind, Value)>) -> Result<PgArguments> {
    let mut args = PgArguments::default();
    for (kind, value) in params {
        bind(&mut args, kind, value)?;
    }
    Ok(args)
}

fn bind(args: &mut PgArguments, kind: ValueKind, value: Value) -> Result<()> {
    let added = match value {
        Value::Null => match kind {
            ValueKind::Bool => args.add(None::<bool>),
            ValueKind::Int => args.add(None::<i64>),
            ValueKind::Float => args.add(None::<f64>),
            ValueKind::Text => args.add(None::<String>),
            ValueKind::Bytes => args.add(None::<Vec<u8>>),
            ValueKind::Uuid => args.add(None::<Uuid>),
            ValueKind::Timestamp => args.add(None::<DateTime<Utc>>),
            ValueKind::Date => args.add(None::<NaiveDate>),
            ValueKind::Json => args.add(None::<serde_json::Value>),
            ValueKind::Vector => args.add(None::<Vec<f32>>),
        },
        Value::Bool(v) => args.add(v),
        Value::Int(v) => args.add(v),
        Value::Float(v) => args.add(v),
        Value::Text(v) => args.add(v),
        Value::Bytes(v) => args.add(v),
        Value::Uuid(v) => args.add(v),
        Value::Timestamp(v) => args.add(v),
        Value::Date(v) => args.add(v),
        Value::Json(v) => args.add(v),
        Value::Vector(v) => args.add(v),
    };
    added.map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "value cannot be encoded for PostgreSQL",
        )
    })
}

/// Decodes a row whose columns are the entity's fields in declaration order.
pub fn record(entity: &'static EntityMeta, row: &PgRow) -> Result<Record> {
    let mut record = Record::with_capacity(entity.fields.len());
    for (i, field) in entity.fields.iter().enumerate() {
        let value = decode(row, i, field.kind).map_err(|_| {
            Error::new(
                ErrorKind::DataCorruption,
                format!(
                    "entity {}: column {} does not hold a {:?}",
                    entity.name, field.name, field.kind
                ),
            )
            .with_store(udl_core::StoreKind::POSTGRES)
        })?;
        record.push(field.name, value);
    }
    Ok(record)
}

fn decode(row: &PgRow, i: usize, kind: ValueKind) -> std::result::Result<Value, sqlx::Error> {
    // Only kinds that several column types can hold look at the column's type.
    let column_type = || row.column(i).type_info().name();
    let value = match kind {
        ValueKind::Bool => row.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
        ValueKind::Int => match column_type() {
            "INT2" => row
                .try_get::<Option<i16>, _>(i)?
                .map(|v| Value::Int(v.into())),
            "INT4" => row
                .try_get::<Option<i32>, _>(i)?
                .map(|v| Value::Int(v.into())),
            _ => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        },
        ValueKind::Float => match column_type() {
            "FLOAT4" => row
                .try_get::<Option<f32>, _>(i)?
                .map(|v| Value::Float(v.into())),
            _ => row.try_get::<Option<f64>, _>(i)?.map(Value::Float),
        },
        ValueKind::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
        ValueKind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Bytes),
        ValueKind::Uuid => row.try_get::<Option<Uuid>, _>(i)?.map(Value::Uuid),
        ValueKind::Timestamp => match column_type() {
            "TIMESTAMP" => row
                .try_get::<Option<NaiveDateTime>, _>(i)?
                .map(|v| Value::Timestamp(v.and_utc())),
            _ => row
                .try_get::<Option<DateTime<Utc>>, _>(i)?
                .map(Value::Timestamp),
        },
        ValueKind::Date => row.try_get::<Option<NaiveDate>, _>(i)?.map(Value::Date),
        ValueKind::Json => row
            .try_get::<Option<serde_json::Value>, _>(i)?
            .map(Value::Json),
        ValueKind::Vector => row.try_get::<Option<Vec<f32>>, _>(i)?.map(Value::Vector),
    };
    Ok(value.unwrap_or(Value::Null))
}
