//! A record: field name to value, the only shape backends ever see.

use crate::entity::EntityMeta;
use crate::error::{Error, ErrorKind, Result};
use crate::value::{FieldValue, Value};

/// Field values of one entity instance, keyed by the entity's own field names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    values: Vec<(&'static str, Value)>,
}

impl Record {
    /// An empty record with room for `n` fields.
    pub fn with_capacity(n: usize) -> Self {
        Record {
            values: Vec::with_capacity(n),
        }
    }

    /// Sets `field` (replacing an earlier value).
    pub fn set(&mut self, field: &'static str, value: Value) {
        match self.values.iter_mut().find(|(name, _)| *name == field) {
            Some(slot) => slot.1 = value,
            None => self.values.push((field, value)),
        }
    }

    /// The value of `field`, if present.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, v)| v)
    }

    /// Appends `field` without checking whether it is already present; for decoders that
    /// produce each field exactly once.
    pub fn push(&mut self, field: &'static str, value: Value) {
        self.values.push((field, value));
    }

    /// Removes and returns the value of `field`.
    pub fn take(&mut self, field: &str) -> Option<Value> {
        let pos = self.values.iter().position(|(name, _)| *name == field)?;
        Some(self.values.swap_remove(pos).1)
    }

    /// Removes `field` and converts it to `T`; used by derived `from_record`.
    pub fn take_field<T: FieldValue>(&mut self, entity: &str, field: &'static str) -> Result<T> {
        let value = self.take(field).unwrap_or(Value::Null);
        T::from_value(value).map_err(|e| {
            Error::new(
                ErrorKind::DataCorruption,
                format!("entity {entity}, field {field}: {}", e.message()),
            )
        })
    }

    /// Field names and values in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    /// Number of fields present.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Checks every field is known with a matching kind, and every non-nullable field is
    /// present and not null.
    pub fn validate(&self, entity: &EntityMeta) -> Result<()> {
        for (name, value) in self.iter() {
            let field = entity.require_field(name)?;
            check_value(entity, field, value)?;
        }
        for field in entity.fields.iter().filter(|f| !f.nullable) {
            if self.get(field.name).is_none_or(Value::is_null) {
                return Err(Error::invalid(format!(
                    "entity {}: field {} is required",
                    entity.name, field.name
                )));
            }
        }
        Ok(())
    }
}

/// Checks one value against its field: kind and nullability.
pub(crate) fn check_value(
    entity: &EntityMeta,
    field: &crate::entity::FieldMeta,
    value: &Value,
) -> Result<()> {
    match value.kind() {
        None if field.nullable => Ok(()),
        None => Err(Error::invalid(format!(
            "entity {}: field {} may not be null",
            entity.name, field.name
        ))),
        Some(kind) if kind == field.kind => Ok(()),
        Some(kind) => Err(Error::invalid(format!(
            "entity {}: field {} expects {:?}, got {kind:?}",
            entity.name, field.name, field.kind
        ))),
    }
}
