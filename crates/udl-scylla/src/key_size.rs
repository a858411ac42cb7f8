//! The partition key's size, checked before a statement is sent: CQL refuses a key longer than
//! 65535 bytes with a bare "invalid" that says nothing of why.

use udl_core::{EntityMeta, Error, Record, Result, StoreKind, Value};

/// The longest partition key CQL accepts, in bytes (its length travels as an unsigned short).
pub const MAX_PARTITION_KEY_BYTES: usize = 65_535;

/// Checks the partition key made of `parts` (field name and value, in key order).
pub(crate) fn check_partition_key<'a>(
    entity: &EntityMeta,
    parts: impl IntoIterator<Item = &'a Value>,
    operation: &'static str,
) -> Result<()> {
    let parts: Vec<usize> = parts.into_iter().map(Value::encoded_len).collect();
    // A composite key serializes each component with a 2-byte length and an end byte.
    let size = match parts.as_slice() {
        [one] => *one,
        many => many.iter().map(|n| n + 3).sum(),
    };
    if size > MAX_PARTITION_KEY_BYTES {
        return Err(Error::invalid(format!(
            "the partition key of {} is {size} bytes; ScyllaDB allows at most \
             {MAX_PARTITION_KEY_BYTES}",
            entity.name
        ))
        .with_store(StoreKind::SCYLLA)
        .with_operation(operation));
    }
    Ok(())
}

/// Checks the partition key of `record`.
pub(crate) fn check_record_key(
    entity: &EntityMeta,
    record: &Record,
    operation: &'static str,
) -> Result<()> {
    let parts = entity
        .partition_fields()
        .iter()
        .map(|name| record.get(name).unwrap_or(&Value::Null));
    check_partition_key(entity, parts, operation)
}
