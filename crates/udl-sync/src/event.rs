//! Sanitized change events as CloudEvents 1.0 (JSON format), and what was done to their
//! fields on the way (for the redaction ledger). The envelope is written by hand to the spec:
//! its handful of attributes does not warrant a dependency.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value as Json};

/// What happened to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Inserted.
    Created,
    /// Updated.
    Updated,
    /// Deleted.
    Deleted,
    /// Read by a snapshot (batch sync): the row as it stood at the event's position.
    Snapshot,
    /// Emitted through the transactional outbox (the entity is the event's declaration).
    Emitted,
}

impl ChangeKind {
    /// The last part of the event type.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Snapshot => "snapshot",
            ChangeKind::Emitted => "emitted",
        }
    }
}

/// A change event, sanitized: it holds no value a declaration kept back.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeEvent {
    /// `<commit position, 16 hex digits>-<change within the transaction, 5 digits>`: the
    /// same every time the change is replayed, so sinks deduplicate by it.
    pub id: String,
    /// The entity (table) changed.
    pub entity: &'static str,
    /// What happened.
    pub kind: ChangeKind,
    /// Where the change comes from (`udl/postgres/<database>/<schema>`).
    pub source: String,
    /// The record's id, or its token when the id is sensitive; `None` when it is stripped.
    pub subject: Option<String>,
    /// Commit time.
    pub time: DateTime<Utc>,
    /// Commit position (LSN) of the transaction.
    pub position: u64,
    /// Which change of the transaction this is, from 0.
    pub ordinal: u32,
    /// The fields that pass, tokens in place of tokenized ones.
    pub data: Map<String, Json>,
}

/// What was done to one field of one event. Its JSON form (the ledger's) names the field,
/// the action and references, never a value; keys come out in order (`action`, then the
/// fields as declared, alphabetically), which is what the ledger's seal covers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Redaction {
    /// Left out, and why.
    Stripped {
        /// Field.
        field: &'static str,
        /// Key version of the ciphertext left out, for a sealed field.
        key_version: Option<u32>,
        /// `sensitive`, `no_export` or `blind_index`.
        reason: &'static str,
    },
    /// Replaced by a token.
    Tokenized {
        /// Field.
        field: &'static str,
        /// Key version the value was sealed under in the store, for a sealed field.
        key_version: Option<u32>,
        /// The token sent instead (a reference into the vault, not a value); `None` for null.
        token: Option<String>,
    },
}

impl Redaction {
    /// The ledger's JSON form.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("a redaction is plain data")
    }
}

/// The event id of the `ordinal`th change of the transaction committed at `position`.
pub fn event_id(position: u64, ordinal: u32) -> String {
    format!("{position:016X}-{ordinal:05}")
}

impl ChangeEvent {
    /// `ce.<entity>.<created|updated|deleted|snapshot|emitted>`.
    pub fn event_type(&self) -> String {
        format!("ce.{}.{}", self.entity, self.kind.as_str())
    }

    /// The data as JSON text.
    pub fn data_json(&self) -> String {
        Json::Object(self.data.clone()).to_string()
    }

    /// The whole event in the CloudEvents JSON format.
    pub fn to_cloudevent(&self) -> Json {
        serde_json::to_value(self.envelope()).expect("an event is plain data")
    }

    /// The same as JSON text, written straight from the event (the bus sends this).
    pub fn to_cloudevent_text(&self) -> String {
        serde_json::to_string(&self.envelope()).expect("an event is plain data")
    }

    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            specversion: "1.0",
            id: &self.id,
            event_type: EventType(self),
            source: &self.source,
            subject: self.subject.as_deref(),
            time: self.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            datacontenttype: "application/json",
            data: &self.data,
        }
    }
}

/// An event's type, written without building the string first.
struct EventType<'a>(&'a ChangeEvent);

impl serde::Serialize for EventType<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "ce.{}.{}",
            self.0.entity,
            self.0.kind.as_str()
        ))
    }
}

/// A structured-mode CloudEvents 1.0 JSON document.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    specversion: &'static str,
    id: &'a str,
    #[serde(rename = "type")]
    event_type: EventType<'a>,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    time: String,
    datacontenttype: &'static str,
    data: &'a Map<String, Json>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_follows_cloudevents_1_0() {
        let mut data = Map::new();
        data.insert("topic".into(), "sleep".into());
        let event = ChangeEvent {
            id: event_id(0x1A2B, 3),
            entity: "sessions",
            kind: ChangeKind::Updated,
            source: "udl/postgres/udl/public".into(),
            subject: Some("tok_ab".into()),
            time: "2026-01-02T03:04:05Z".parse().unwrap(),
            position: 0x1A2B,
            ordinal: 3,
            data,
        };
        assert_eq!(
            event.to_cloudevent(),
            serde_json::json!({
                "specversion": "1.0",
                "id": "0000000000001A2B-00003",
                "type": "ce.sessions.updated",
                "source": "udl/postgres/udl/public",
                "subject": "tok_ab",
                "time": "2026-01-02T03:04:05.000000Z",
                "datacontenttype": "application/json",
                "data": {"topic": "sleep"},
            })
        );
        let text: Json = serde_json::from_str(&event.to_cloudevent_text()).unwrap();
        assert_eq!(text, event.to_cloudevent(), "the text is the same document");
        let no_subject = ChangeEvent {
            subject: None,
            ..event
        };
        assert!(no_subject.to_cloudevent().get("subject").is_none());
    }

    #[test]
    fn ledger_entries_name_fields_and_actions_only() {
        let stripped = Redaction::Stripped {
            field: "notes",
            reason: "sensitive",
            key_version: Some(2),
        };
        assert_eq!(
            stripped.to_json(),
            serde_json::json!({"field": "notes", "action": "stripped", "reason": "sensitive", "key_version": 2})
        );
        let tokenized = Redaction::Tokenized {
            field: "patient_ref",
            token: Some("tok_1".into()),
            key_version: None,
        };
        assert_eq!(tokenized.to_json()["action"], "tokenized");
    }
}
