//! Partial updates: which fields to set, and the version the caller expects.

use crate::entity::EntityMeta;
use crate::error::{Error, Result};
use crate::record::check_value;
use crate::value::Value;

/// Fields to set on one record, built by the caller: `Changes::new().set("plan", "pro")`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    sets: Vec<(String, Value)>,
    expected_version: Option<i64>,
}

impl Changes {
    /// No changes yet.
    pub fn new() -> Self {
        Changes::default()
    }

    /// Sets `field` to `value`.
    pub fn set(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.sets.push((field.into(), value.into()));
        self
    }

    /// Applies only if the record's version field still equals `version`; otherwise the
    /// update fails with `Conflict`.
    pub fn expect_version(mut self, version: i64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// Checks the changes against `entity`: known fields, matching kinds, no id or version
    /// field (the store manages the version), no field twice, at least one field.
    pub fn validate(&self, entity: &'static EntityMeta) -> Result<ValidChanges> {
        if self.sets.is_empty() {
            return Err(Error::invalid("update has no fields to set"));
        }
        let mut sets = Vec::with_capacity(self.sets.len());
        for (name, value) in &self.sets {
            let field = entity.require_field(name)?;
            if field.name == entity.id_field || Some(field.name) == entity.version_field {
                return Err(Error::invalid(format!(
                    "entity {}: field {} cannot be updated",
                    entity.name, field.name
                )));
            }
            if sets.iter().any(|(n, _)| *n == field.name) {
                return Err(Error::invalid(format!(
                    "entity {}: field {} set twice",
                    entity.name, field.name
                )));
            }
            check_value(entity, field, value)?;
            sets.push((field.name, value.clone()));
        }
        if self.expected_version.is_some() && entity.version_field.is_none() {
            return Err(Error::invalid(format!(
                "entity {} has no version field to check",
                entity.name
            )));
        }
        Ok(ValidChanges {
            sets,
            expected_version: self.expected_version,
        })
    }
}

/// Changes checked against an entity; field names are the entity's own.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidChanges {
    /// Fields to set.
    pub sets: Vec<(&'static str, Value)>,
    /// Version the record must have for the update to apply.
    pub expected_version: Option<i64>,
}
