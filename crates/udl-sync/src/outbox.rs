//! The transactional outbox. An event a service emits inside a PostgreSQL transaction is
//! written to the WAL as a logical decoding message of that transaction
//! (`pg_logical_emit_message`), so it is committed or discarded with it, and the relay reads
//! it in commit order among its transaction's row changes; no table fills up and nothing
//! polls. An event is an entity declared with `store = "outbox"`: its fields are sanitized by
//! their declarations before the message is written (the WAL never holds what a declaration
//! keeps back), and the relay checks the message against the declaration again before
//! anything of it leaves.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use udl_core::{EntityMeta, Error, ErrorKind, FieldMeta, Record, Result, StoreKind, Value};
use udl_privacy::tokens::TokenVault;

use crate::event::{event_id, ChangeEvent, ChangeKind, Redaction};
use crate::plan::{require_classified, treatment_of, Treatment};
use crate::sanitize::{token_input, ChangePlace, Sanitized, VaultEntry};

/// What an outbox event declares as its store: `#[udl(table = "appointment_booked", store =
/// "outbox")]`. Events are never stored; the name is the event's.
pub const OUTBOX_STORE: StoreKind = StoreKind::named("outbox");

/// The prefix of the logical decoding messages that carry outbox events, before the schema.
pub const OUTBOX_PREFIX: &str = "udl.outbox";

/// The prefix of the outbox messages of the deployment in `schema`. Logical messages are not
/// filtered by publication: every slot of the database reads every one, so each relay takes
/// only its own schema's.
pub fn outbox_prefix(schema: &str) -> String {
    format!("{OUTBOX_PREFIX}:{schema}")
}

/// The largest sanitized event the outbox takes: one the bus could not carry would halt the
/// relay, so it is refused when emitted instead.
pub const OUTBOX_MAX_BYTES: usize = 256 * 1024;

/// An outbox event's declaration, read once: what happens to each field.
#[derive(Debug)]
pub struct EventPlan {
    /// The event as declared.
    pub entity: &'static EntityMeta,
    fields: Vec<(&'static FieldMeta, Treatment)>,
}

impl EventPlan {
    /// The plan of the event `entity` declares, or why it cannot be emitted.
    pub fn new(entity: &'static EntityMeta) -> std::result::Result<Self, String> {
        if entity.store != Some(OUTBOX_STORE) {
            return Err(format!(
                "{} is not an outbox event: declare it with store = \"outbox\"",
                entity.name
            ));
        }
        require_classified(entity)?;
        let fields = entity.fields.iter().map(|f| (f, treatment_of(f))).collect();
        Ok(EventPlan { entity, fields })
    }

    fn treatment(&self, field: &str) -> Option<Treatment> {
        self.fields
            .iter()
            .find(|(f, _)| f.name == field)
            .map(|(_, t)| *t)
    }
}

/// An outbox event ready for the WAL, and the vault entries its tokens need (kept before the
/// message is written).
#[derive(Debug)]
pub struct OutboxMessage {
    /// The message content (JSON).
    pub content: String,
    /// Tokens to keep.
    pub vault: Vec<VaultEntry>,
}

/// The message content: the event's name and its sanitized fields.
#[derive(Serialize, Deserialize)]
struct Content {
    event: String,
    data: Map<String, Json>,
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// `record`, an event of `plan`, sanitized as a captured row would be: public and internal
/// fields as they are, `tokenize` fields as their tokens, every other field left out.
pub fn sanitize_event(
    plan: &EventPlan,
    mut record: Record,
    vault: &TokenVault,
) -> Result<OutboxMessage> {
    let mut data = Map::new();
    let mut keep = Vec::new();
    for (field, treatment) in &plan.fields {
        let value = record.take(field.name).unwrap_or(Value::Null);
        let json = match treatment {
            Treatment::Strip(_) => continue,
            Treatment::Pass => value.to_json(),
            Treatment::Tokenize if value.is_null() => Json::Null,
            Treatment::Tokenize => {
                let input = token_input(&value);
                let token = vault.token_of(field.name, &input);
                keep.push(VaultEntry {
                    kind: field.name,
                    value: input,
                    token: token.clone(),
                });
                Json::String(token)
            }
        };
        data.insert(field.name.to_owned(), json);
    }
    let content = serde_json::to_string(&Content {
        event: plan.entity.name.to_owned(),
        data,
    })
    .map_err(|e| invalid(format!("outbox event {}: {e}", plan.entity.name)))?;
    if content.len() > OUTBOX_MAX_BYTES {
        return Err(invalid(format!(
            "outbox event {} is {} bytes once sanitized; the most is {OUTBOX_MAX_BYTES}",
            plan.entity.name,
            content.len()
        )));
    }
    Ok(OutboxMessage {
        content,
        vault: keep,
    })
}

/// The event an outbox message carries, at `place`, checked against its declaration (among
/// `plans`) again; or why the relay must halt on it (an event no one declares, a field it
/// does not declare or keeps back, a tokenized field without a token).
pub fn receive(
    plans: &[Arc<EventPlan>],
    content: &[u8],
    place: ChangePlace,
    source: &str,
) -> std::result::Result<Sanitized, String> {
    let content: Content = serde_json::from_slice(content)
        .map_err(|e| format!("an outbox message that is not an event: {e}"))?;
    let plan = plans
        .iter()
        .find(|p| p.entity.name == content.event)
        .ok_or_else(|| {
            format!(
                "an outbox event {:?}, which no registered event declares",
                content.event
            )
        })?;
    let name = plan.entity.name;
    for (key, value) in &content.data {
        match plan.treatment(key) {
            None => {
                return Err(format!(
                    "outbox event {name} carries a field {key:?} it does not declare"
                ))
            }
            Some(Treatment::Strip(_)) => {
                return Err(format!(
                    "outbox event {name} carries field {key}, which its declaration keeps back"
                ))
            }
            Some(Treatment::Tokenize)
                if !(value.is_null()
                    || value.as_str().is_some_and(TokenVault::looks_like_token)) =>
            {
                return Err(format!(
                    "outbox event {name} carries field {key}, declared tokenize, without a token"
                ))
            }
            Some(_) => {}
        }
    }
    let mut redactions = Vec::new();
    for (field, treatment) in &plan.fields {
        match treatment {
            Treatment::Strip(reason) => redactions.push(Redaction::Stripped {
                field: field.name,
                key_version: None,
                reason: reason.as_str(),
            }),
            Treatment::Tokenize => redactions.push(Redaction::Tokenized {
                field: field.name,
                key_version: None,
                token: content
                    .data
                    .get(field.name)
                    .and_then(Json::as_str)
                    .map(str::to_owned),
            }),
            Treatment::Pass => {}
        }
    }
    let subject = match plan.treatment(plan.entity.id_field) {
        Some(Treatment::Strip(_)) | None => None,
        Some(_) => content
            .data
            .get(plan.entity.id_field)
            .filter(|id| !id.is_null())
            .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_owned)),
    };
    Ok(Sanitized {
        event: ChangeEvent {
            id: event_id(place.position, place.ordinal),
            entity: name,
            kind: ChangeKind::Emitted,
            source: source.to_owned(),
            subject,
            time: place.time,
            position: place.position,
            ordinal: place.ordinal,
            data: content.data,
        },
        redactions,
        vault: Vec::new(),
    })
}
