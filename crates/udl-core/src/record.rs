//! A record: field name to value, the only shape backends ever see.

use crate::entity::EntityMeta;
use crate::error::{Error, ErrorKind, Result};
use crate::value::{FieldValue, Value, ValueKind};

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
    #[inline]
    pub fn push(&mut self, field: &'static str, value: Value) {
        self.values.push((field, value));
    }

    /// Removes and returns the value of `field`.
    pub fn take(&mut self, field: &str) -> Option<Value> {
        let pos = self.values.iter().position(|(name, _)| *name == field)?;
        Some(self.values.swap_remove(pos).1)
    }

    /// The values in `entity`'s field order (absent fields as null), for converting into a
    /// typed entity; used by derived `from_record`. Records built by decoders are already in
    /// that order, which makes this a check and no copy.
    pub fn into_ordered(mut self, entity: &'static EntityMeta) -> OrderedValues {
        let in_order = self.values.len() == entity.fields.len()
            && self
                .values
                .iter()
                .zip(entity.fields)
                .all(|((n, _), f)| *n == f.name);
        if !in_order {
            let mut ordered = Vec::with_capacity(entity.fields.len());
            for f in entity.fields {
                ordered.push((f.name, self.take(f.name).unwrap_or(Value::Null)));
            }
            self.values = ordered;
        }
        OrderedValues {
            entity,
            values: self.values.into_iter(),
            next: 0,
        }
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

/// A record's values in entity field order, taken one field at a time.
pub struct OrderedValues {
    entity: &'static EntityMeta,
    values: std::vec::IntoIter<(&'static str, Value)>,
    next: usize,
}

impl OrderedValues {
    /// Converts the next field's value to `T`; a wrong kind is `DataCorruption` naming the
    /// entity and field.
    pub fn next_field<T: FieldValue>(&mut self) -> Result<T> {
        let field = self.entity.fields.get(self.next).map_or("?", |f| f.name);
        self.next += 1;
        let value = self.values.next().map_or(Value::Null, |(_, v)| v);
        T::from_value(value).map_err(|e| {
            Error::new(
                ErrorKind::DataCorruption,
                format!(
                    "entity {}, field {field}: {}",
                    self.entity.name,
                    e.message()
                ),
            )
        })
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
        Some(ValueKind::Vector) if field.kind == ValueKind::Vector => match value {
            Value::Vector(v) if v.iter().all(|x| x.is_finite()) => Ok(()),
            _ => Err(Error::invalid(format!(
                "entity {}: field {} holds a NaN or infinite component",
                entity.name, field.name
            ))),
        },
        Some(kind) if kind == field.kind => Ok(()),
        Some(kind) => Err(Error::invalid(format!(
            "entity {}: field {} expects {:?}, got {kind:?}",
            entity.name, field.name, field.kind
        ))),
    }
}
