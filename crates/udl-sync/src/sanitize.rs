//! One captured row change turned into a sanitized event and its redactions, by the entity's
//! plan. Tokens are computed here (a keyed hash, no I/O); the vault entries they need are
//! handed back so the relay keeps them before the event leaves.

use std::sync::Arc;

use serde_json::Map;
use udl_core::{Value, ValueKind};
use udl_privacy::tokens::TokenVault;
use udl_privacy::{FieldCipher, FieldKeys};

use crate::column_value;
use crate::event::{event_id, ChangeEvent, ChangeKind, Redaction};
use crate::pgoutput::{Column, Relation, Tuple};
use crate::plan::{EntityPlan, PlannedField, Treatment};

/// A captured table matched to its entity's plan.
#[derive(Debug)]
pub struct BoundTable {
    /// The plan.
    pub plan: Arc<EntityPlan>,
    /// For each column of the relation: its field's index in the plan.
    fields: Vec<usize>,
    /// For each column: its type OID.
    type_oids: Vec<u32>,
    /// For each column: whether it is part of the key.
    key: Vec<bool>,
}

impl BoundTable {
    /// `relation` under `plan`, or why its columns do not match the declaration.
    pub fn bind(plan: Arc<EntityPlan>, relation: &Relation) -> Result<Self, String> {
        let fields = plan.bind(relation)?;
        Ok(BoundTable {
            plan,
            fields,
            type_oids: relation.columns.iter().map(|c| c.type_oid).collect(),
            key: relation.columns.iter().map(|c| c.key).collect(),
        })
    }

    /// The type OID of column `c`.
    pub fn type_oid(&self, c: usize) -> u32 {
        self.type_oids[c]
    }

    /// Which column holds the record's id, if the relation has it.
    pub fn id_column(&self) -> Option<usize> {
        let id = self.plan.entity.id_field;
        (0..self.fields.len()).find(|&c| self.plan.fields[self.fields[c]].stored.name == id)
    }
}

/// A value to keep in the vault under its token before the event naming it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    /// Token kind: the field's name, so the same value in same-named fields of different
    /// entities joins.
    pub kind: &'static str,
    /// The value.
    pub value: String,
    /// Its token.
    pub token: String,
}

/// Where a change sits in the stream.
#[derive(Debug, Clone, Copy)]
pub struct ChangePlace {
    /// Commit position of its transaction.
    pub position: u64,
    /// Its place among the transaction's changes.
    pub ordinal: u32,
    /// Commit time.
    pub time: chrono::DateTime<chrono::Utc>,
}

/// A sanitized change: the event, what was done to its fields, and the vault entries its
/// tokens need.
#[derive(Debug)]
pub struct Sanitized {
    /// The event.
    pub event: ChangeEvent,
    /// What was done to which field.
    pub redactions: Vec<Redaction>,
    /// Tokens to keep.
    pub vault: Vec<VaultEntry>,
}

/// Sanitizes changes with the process's field keys (to open sealed fields that are
/// tokenized) and the vault's token key.
pub struct Sanitizer {
    keys: Arc<FieldKeys>,
    vault: Arc<TokenVault>,
    source: String,
}

/// A value as the text its token is made of (and an id as an event's subject).
pub(crate) fn token_input(value: &Value) -> String {
    match value {
        Value::Text(s) => s.clone(),
        Value::Uuid(u) => u.to_string(),
        Value::Int(i) => i.to_string(),
        other => other.to_json().to_string(),
    }
}

impl Sanitizer {
    /// A sanitizer whose events name `source`.
    pub fn new(keys: Arc<FieldKeys>, vault: Arc<TokenVault>, source: String) -> Self {
        Sanitizer {
            keys,
            vault,
            source,
        }
    }

    /// The `source` its events name.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn read(&self, field: &PlannedField, type_oid: u32, column: &Column) -> Result<Value, String> {
        match column {
            Column::Null => Ok(Value::Null),
            Column::Binary(bytes) => column_value::read(field.stored.kind, type_oid, bytes)
                .map_err(|e| format!("field {}: {}", field.stored.name, e.message())),
            Column::Text(_) => Err(format!(
                "field {} arrived in text form; the relay asks for binary values",
                field.stored.name
            )),
            Column::Unchanged => Err(format!(
                "field {} is an unchanged TOAST value",
                field.stored.name
            )),
        }
    }

    /// The event for a change of `kind` to the row `tuple` of `table`, at `place`; or why
    /// it cannot be sent (the relay halts on it).
    pub fn sanitize(
        &self,
        table: &BoundTable,
        kind: ChangeKind,
        tuple: &Tuple,
        place: ChangePlace,
    ) -> Result<Sanitized, String> {
        let plan = &table.plan;
        let entity = plan.entity;
        if tuple.len() != table.fields.len() {
            return Err(format!(
                "a change to {} has {} columns where its relation has {}",
                entity.name,
                tuple.len(),
                table.fields.len()
            ));
        }
        let id_column = table
            .id_column()
            .ok_or_else(|| format!("a change to {} carries no id column", entity.name))?;
        let id_field = &plan.fields[table.fields[id_column]];
        let id = self.read(id_field, table.type_oids[id_column], &tuple[id_column])?;
        if id.is_null() {
            return Err(format!("a change to {} has a null id", entity.name));
        }
        let mut out = Sanitized {
            event: ChangeEvent {
                id: event_id(place.position, place.ordinal),
                entity: entity.name,
                kind,
                source: self.source.clone(),
                subject: None,
                time: place.time,
                position: place.position,
                ordinal: place.ordinal,
                data: Map::new(),
            },
            redactions: Vec::new(),
            vault: Vec::new(),
        };
        for (c, column) in tuple.iter().enumerate() {
            // A deleted row's old tuple carries its key; its other columns are not values.
            let absent = matches!(column, Column::Unchanged)
                || (kind == ChangeKind::Deleted && !table.key[c]);
            if absent {
                continue;
            }
            let field = &plan.fields[table.fields[c]];
            let sealed_version = match column {
                Column::Binary(b) if field.stored.handling.sealed => FieldCipher::version_of(b),
                _ => None,
            };
            match field.treatment {
                Treatment::Strip(reason) => out.redactions.push(Redaction::Stripped {
                    field: field.stored.name,
                    reason: reason.as_str(),
                    key_version: sealed_version,
                }),
                Treatment::Pass => {
                    let value = self.read(field, table.type_oids[c], column)?;
                    if c == id_column {
                        out.event.subject = Some(token_input(&value));
                    }
                    out.event
                        .data
                        .insert(field.stored.name.into(), value.to_json());
                }
                Treatment::Tokenize => {
                    let token =
                        self.tokenize(plan, field, table.type_oids[c], column, &id, &mut out)?;
                    if c == id_column {
                        out.event.subject.clone_from(&token);
                    }
                    out.event
                        .data
                        .insert(field.stored.name.into(), token.clone().into());
                    out.redactions.push(Redaction::Tokenized {
                        field: field.stored.name,
                        token,
                        key_version: sealed_version,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The token of a tokenized column (opened first when sealed), its vault entry added
    /// to `out`; `None` for null.
    fn tokenize(
        &self,
        plan: &EntityPlan,
        field: &PlannedField,
        type_oid: u32,
        column: &Column,
        id: &Value,
        out: &mut Sanitized,
    ) -> Result<Option<String>, String> {
        let stored = self.read(field, type_oid, column)?;
        let declared = field
            .declared
            .expect("only declared fields are tokenized, never blind indexes");
        let value = match stored {
            Value::Null => return Ok(None),
            Value::Bytes(sealed) if field.stored.handling.sealed => {
                udl_privacy::open_field(&self.keys, "postgres", plan.entity, declared, id, &sealed)
                    .map_err(|e| {
                        format!("field {} does not open: {}", declared.name, e.message())
                    })?
            }
            other if declared.kind == ValueKind::Bytes || !field.stored.handling.sealed => other,
            _ => return Err(format!("sealed field {} is not bytes", declared.name)),
        };
        let input = token_input(&value);
        let token = self.vault.token_of(declared.name, &input);
        out.vault.push(VaultEntry {
            kind: declared.name,
            value: input,
            token: token.clone(),
        });
        Ok(Some(token))
    }
}
