//! Turning an entity's records, changes and filters into their stored form and back: encrypted
//! fields become ciphertext bound to their place, blind-indexed ones gain their index, and
//! equality filters on them are rewritten to the index. Nothing here does I/O.

use std::sync::Arc;

use udl_core::{
    EntityMeta, Error, FieldMeta, Filter, Record, Result, SortKey, ValidChanges, Value,
};

use crate::cipher::{FieldCipher, FieldPlace};
use crate::field_keys::FieldKeys;
use crate::plain;
use crate::stored_form::{blind_index_name, stored_form};

/// One entity's records in one store, sealed and opened.
pub(crate) struct Sealer<'a> {
    keys: &'a FieldKeys,
    /// The cipher as loaded when this sealer was made: one operation uses one set of keys.
    cipher: Arc<FieldCipher>,
    store: &'static str,
    /// The entity as callers see it.
    pub entity: &'static EntityMeta,
    /// The entity as the store holds it.
    pub form: &'static EntityMeta,
}

impl<'a> Sealer<'a> {
    pub fn new(
        keys: &'a FieldKeys,
        store: &'static str,
        entity: &'static EntityMeta,
    ) -> Result<Self> {
        Ok(Sealer {
            cipher: keys.cipher(),
            keys,
            store,
            entity,
            form: stored_form(entity)?,
        })
    }

    /// Whether anything needs sealing at all.
    pub fn is_plain(&self) -> bool {
        std::ptr::eq(self.entity, self.form)
    }

    fn place<'p>(&self, field: &'p str, record_id: &'p [u8]) -> FieldPlace<'p>
    where
        'a: 'p,
    {
        FieldPlace {
            store: self.store,
            table: self.entity.name,
            field,
            record_id,
        }
    }

    fn blind_index(&self, field: &FieldMeta, value: &Value) -> Result<Option<Value>> {
        let Some(rule) = field.handling.blind_index else {
            return Ok(None);
        };
        Ok(Some(match value {
            Value::Null => Value::Null,
            Value::Text(text) => Value::Bytes(
                self.keys
                    .index
                    .of(self.entity.name, field.name, text, rule)
                    .to_vec(),
            ),
            _ => return Err(Error::invalid("a blind-indexed field must hold text")),
        }))
    }

    /// `value` of `field` sealed for the record with id `record_id`, and its blind index.
    fn seal_value(
        &self,
        field: &FieldMeta,
        record_id: &[u8],
        value: Value,
    ) -> Result<(Value, Option<Value>)> {
        let index = self.blind_index(field, &value)?;
        if value.is_null() {
            return Ok((Value::Null, index));
        }
        let sealed = self.cipher.encrypt(
            &self.place(field.name, record_id),
            &plain::to_bytes(&value)?,
        )?;
        Ok((Value::Bytes(sealed), index))
    }

    fn record_id(&self, id: &Value) -> Result<Vec<u8>> {
        plain::to_bytes(id)
    }

    /// `record` in its stored form.
    pub fn seal_record(&self, mut record: Record) -> Result<Record> {
        if self.is_plain() {
            return Ok(record);
        }
        let id = record
            .get(self.entity.id_field)
            .ok_or_else(|| Error::invalid("record has no id"))?;
        let id = self.record_id(id)?;
        let mut out = Record::with_capacity(self.form.fields.len());
        for field in self.entity.fields {
            let Some(value) = record.take(field.name) else {
                continue;
            };
            if !field.handling.encrypt {
                out.push(field.name, value);
                continue;
            }
            let (sealed, index) = self.seal_value(field, &id, value)?;
            out.push(field.name, sealed);
            if let Some(index) = index {
                out.push(self.index_field(field), index);
            }
        }
        Ok(out)
    }

    fn index_field(&self, field: &FieldMeta) -> &'static str {
        let name = blind_index_name(field.name);
        self.form
            .field(&name)
            .expect("the stored form has a blind-index field for every indexed field")
            .name
    }

    /// A stored record back in the entity's form: ciphertext opened, blind indexes dropped.
    pub fn open_record(&self, mut stored: Record) -> Result<Record> {
        if self.is_plain() {
            return Ok(stored);
        }
        let id = stored
            .get(self.entity.id_field)
            .ok_or_else(|| Error::invalid("stored record has no id"))?;
        let id = self.record_id(id)?;
        let mut out = Record::with_capacity(self.entity.fields.len());
        for field in self.entity.fields {
            let Some(value) = stored.take(field.name) else {
                continue;
            };
            let value = match value {
                Value::Bytes(sealed) if field.handling.encrypt => {
                    let opened = self.cipher.decrypt(&self.place(field.name, &id), &sealed)?;
                    plain::from_bytes(field.kind, opened)?
                }
                other => other,
            };
            out.push(field.name, value);
        }
        Ok(out)
    }

    /// Whether a value in `stored` (records in stored form) is sealed under a newer key version
    /// than this sealer has: another process rotated the keys.
    pub fn names_newer_version(&self, stored: &[Record]) -> bool {
        let newest = self.cipher.current_version();
        stored.iter().any(|record| {
            self.entity
                .fields
                .iter()
                .filter(|f| f.handling.encrypt)
                .any(|f| {
                    matches!(record.get(f.name), Some(Value::Bytes(sealed))
                        if FieldCipher::version_of(sealed).is_some_and(|v| v > newest))
                })
        })
    }

    /// The encrypted fields of `stored` (a record in stored form) that an older key version
    /// sealed, sealed again with the newest.
    pub fn resealed(&self, stored: &Record) -> Result<Vec<(&'static str, Value)>> {
        let id = stored
            .get(self.entity.id_field)
            .ok_or_else(|| Error::invalid("stored record has no id"))?;
        let id = self.record_id(id)?;
        let newest = self.cipher.current_version();
        let mut resealed = Vec::new();
        for field in self.entity.fields.iter().filter(|f| f.handling.encrypt) {
            let Some(Value::Bytes(sealed)) = stored.get(field.name) else {
                continue;
            };
            if FieldCipher::version_of(sealed).is_some_and(|v| v >= newest) {
                continue;
            }
            let place = self.place(field.name, &id);
            let opened = self.cipher.decrypt(&place, sealed)?;
            let again = self.cipher.encrypt(&place, &opened)?;
            resealed.push((field.name, Value::Bytes(again)));
        }
        Ok(resealed)
    }

    /// `changes` to the record with `id`, in stored form.
    pub fn seal_changes(&self, id: &Value, changes: &ValidChanges) -> Result<ValidChanges> {
        let id = self.record_id(id)?;
        let mut sets = Vec::with_capacity(changes.sets.len() + 1);
        for (name, value) in &changes.sets {
            let field = self.entity.require_field(name)?;
            if !field.handling.encrypt {
                sets.push((*name, value.clone()));
                continue;
            }
            let (sealed, index) = self.seal_value(field, &id, value.clone())?;
            sets.push((field.name, sealed));
            if let Some(index) = index {
                sets.push((self.index_field(field), index));
            }
        }
        Ok(ValidChanges {
            sets,
            expected_version: changes.expected_version,
        })
    }

    fn refuse(&self, field: &FieldMeta, problem: &str) -> Error {
        Error::invalid(format!(
            "entity {}: field {} is encrypted, {problem}",
            self.entity.name, field.name
        ))
    }

    /// The encrypted field called `name`, if it is one.
    fn encrypted(&self, name: &str) -> Option<&'static FieldMeta> {
        self.entity.field(name).filter(|f| f.handling.encrypt)
    }

    /// The blind-index field filters on `field` use, or a refusal when it has none.
    fn filter_index(&self, field: &'static FieldMeta) -> Result<String> {
        match field.handling.blind_index {
            Some(_) => Ok(self.index_field(field).to_owned()),
            None => Err(self.refuse(
                field,
                "without a blind index, so it cannot be filtered by value",
            )),
        }
    }

    /// The blind index of `value` in `field` (which has one).
    fn index_value(&self, field: &'static FieldMeta, value: &Value) -> Result<Value> {
        Ok(self.blind_index(field, value)?.unwrap_or(Value::Null))
    }

    /// `filter` in stored form: equality on a blind-indexed field compares its index; any
    /// other condition on an encrypted field, except null checks, is refused.
    pub fn seal_filter(&self, filter: &Filter) -> Result<Filter> {
        let equality = |name: &String, value: &Value, eq: bool| -> Result<Filter> {
            let Some(field) = self.encrypted(name) else {
                return Ok(filter.clone());
            };
            if value.is_null() {
                return Ok(filter.clone());
            }
            let name = self.filter_index(field)?;
            let index = self.index_value(field, value)?;
            Ok(if eq {
                Filter::Eq(name, index)
            } else {
                Filter::Ne(name, index)
            })
        };
        let ordered = |name: &String| match self.encrypted(name) {
            Some(field) => Err(self.refuse(
                field,
                "so only equality (through its blind index) and null checks can filter it",
            )),
            None => Ok(filter.clone()),
        };
        match filter {
            Filter::Eq(name, value) => equality(name, value, true),
            Filter::Ne(name, value) => equality(name, value, false),
            Filter::In(name, values) => match self.encrypted(name) {
                None => Ok(filter.clone()),
                Some(field) => Ok(Filter::In(
                    self.filter_index(field)?,
                    values
                        .iter()
                        .map(|v| self.index_value(field, v))
                        .collect::<Result<_>>()?,
                )),
            },
            Filter::Lt(name, _)
            | Filter::Lte(name, _)
            | Filter::Gt(name, _)
            | Filter::Gte(name, _)
            | Filter::Prefix(name, _) => ordered(name),
            Filter::All | Filter::IsNull(_) => Ok(filter.clone()),
            Filter::And(parts) => Ok(Filter::And(self.seal_filters(parts)?)),
            Filter::Or(parts) => Ok(Filter::Or(self.seal_filters(parts)?)),
            Filter::Not(inner) => Ok(Filter::Not(Box::new(self.seal_filter(inner)?))),
        }
    }

    fn seal_filters(&self, parts: &[Filter]) -> Result<Vec<Filter>> {
        parts.iter().map(|f| self.seal_filter(f)).collect()
    }

    /// Sorting by ciphertext would be meaningless, so it is refused.
    pub fn check_sort(&self, sort: &[SortKey]) -> Result<()> {
        match sort.iter().find_map(|k| self.encrypted(&k.field)) {
            Some(field) => Err(self.refuse(field, "so it cannot be sorted on")),
            None => Ok(()),
        }
    }
}

/// The value of `field` of the `entity` record `record_id`, sealed as `sealed` in `store`:
/// for readers of stored rows outside a repository (change data capture), which open only
/// the fields they must.
pub fn open_field(
    keys: &FieldKeys,
    store: &str,
    entity: &EntityMeta,
    field: &FieldMeta,
    record_id: &Value,
    sealed: &[u8],
) -> Result<Value> {
    let id = plain::to_bytes(record_id)?;
    let place = FieldPlace {
        store,
        table: entity.name,
        field: field.name,
        record_id: &id,
    };
    plain::from_bytes(field.kind, keys.cipher().decrypt(&place, sealed)?)
}
