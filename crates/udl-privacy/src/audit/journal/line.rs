//! One journal line: an access-log entry with its position in the journal and its place in the
//! journal's own hash chain, as one line of JSON. The hash is the access log's own entry hash
//! ([`PhiAccessLogEntry::chain_hash`]) taken over the journal's chain, so an edited line breaks
//! its hash and a removed one breaks the link of the line after it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use udl_core::{Purpose, Role};
use udl_postgres::models::{AccessOutcome, PhiAccessLogEntry};
use uuid::Uuid;

/// An entry as the journal holds it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JournalLine {
    /// Its position in the journal: 1, 2, ...
    pub n: i64,
    /// The hash of the line before it (`None` for the journal's first).
    pub prev: Option<Vec<u8>>,
    /// Its hash, over the entry and `prev`.
    pub hash: Vec<u8>,
    /// The entry, without the access log's `seq` and hashes (assigned when it ships).
    pub entry: PhiAccessLogEntry,
}

/// The serialized form; short names, as every PHI access writes one.
#[derive(Serialize, Deserialize)]
struct Stored {
    n: i64,
    prev: Option<String>,
    hash: String,
    id: Uuid,
    /// Microseconds since the epoch: the access log's precision.
    at: i64,
    actor: String,
    role: String,
    purpose: String,
    patient: Option<String>,
    entity: String,
    records: serde_json::Value,
    fields: serde_json::Value,
    op: String,
    outcome: String,
    request: String,
}

/// Why a line could not be read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unreadable;

impl JournalLine {
    /// `entry` at position `n` after the line hashed `prev`. Its time is kept to the
    /// microsecond, as the access log keeps it.
    pub fn new(n: i64, prev: Option<Vec<u8>>, entry: PhiAccessLogEntry) -> Self {
        let micros = entry.occurred_at.timestamp_micros();
        let entry = PhiAccessLogEntry {
            seq: 0,
            occurred_at: DateTime::from_timestamp_micros(micros).unwrap_or(entry.occurred_at),
            prev_hash: None,
            hash: Vec::new(),
            ..entry
        };
        let hash = entry.chain_hash(prev.as_deref());
        JournalLine {
            n,
            prev,
            hash,
            entry,
        }
    }

    /// Whether the hash still matches the content.
    pub fn intact(&self) -> bool {
        self.entry.chain_hash(self.prev.as_deref()) == self.hash
    }

    /// The line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let e = &self.entry;
        let stored = Stored {
            n: self.n,
            prev: self.prev.as_ref().map(hex::encode),
            hash: hex::encode(&self.hash),
            id: e.id,
            at: e.occurred_at.timestamp_micros(),
            actor: e.actor_id.clone(),
            role: e.actor_role.as_str().to_owned(),
            purpose: e.purpose.as_str().to_owned(),
            patient: e.patient_id.clone(),
            entity: e.entity.clone(),
            records: e.record_ids.clone(),
            fields: e.fields.clone(),
            op: e.operation.clone(),
            outcome: e.outcome.as_str().to_owned(),
            request: e.request_id.clone(),
        };
        let mut line = serde_json::to_vec(&stored).expect("a journal line always serializes");
        line.push(b'\n');
        line
    }

    /// A line read back (without its newline).
    pub fn decode(bytes: &[u8]) -> Result<Self, Unreadable> {
        let s: Stored = serde_json::from_slice(bytes).map_err(|_| Unreadable)?;
        let hex_bytes = |text: &str| hex::decode(text).map_err(|_| Unreadable);
        Ok(JournalLine {
            n: s.n,
            prev: s.prev.as_deref().map(hex_bytes).transpose()?,
            hash: hex_bytes(&s.hash)?,
            entry: PhiAccessLogEntry {
                seq: 0,
                id: s.id,
                occurred_at: DateTime::<Utc>::from_timestamp_micros(s.at).ok_or(Unreadable)?,
                actor_id: s.actor,
                actor_role: Role::from_text(&s.role).ok_or(Unreadable)?,
                purpose: Purpose::from_text(&s.purpose).ok_or(Unreadable)?,
                patient_id: s.patient,
                entity: s.entity,
                record_ids: s.records,
                fields: s.fields,
                operation: s.op,
                outcome: AccessOutcome::from_text(&s.outcome).ok_or(Unreadable)?,
                request_id: s.request,
                prev_hash: None,
                hash: Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use udl_core::AccessContext;

    use crate::audit::new_entry;

    fn entry() -> PhiAccessLogEntry {
        let ctx = AccessContext::system("journal-test");
        let mut entry = new_entry(&ctx, "fake_notes", "get", AccessOutcome::Allowed);
        entry.patient_id = Some("fake-patient-1".into());
        entry.record_ids = serde_json::json!(["fake-note-1"]);
        entry
    }

    #[test]
    fn a_line_reads_back_as_written_and_its_hash_holds() {
        let first = JournalLine::new(1, None, entry());
        let second = JournalLine::new(2, Some(first.hash.clone()), entry());
        for line in [&first, &second] {
            let bytes = line.encode();
            assert_eq!(bytes.last(), Some(&b'\n'));
            let back = JournalLine::decode(&bytes[..bytes.len() - 1]).expect("readable");
            assert_eq!(&back, line);
            assert!(back.intact());
        }
    }

    #[test]
    fn an_edited_line_no_longer_matches_its_hash() {
        let line = JournalLine::new(1, None, entry());
        let text = String::from_utf8(line.encode()).unwrap();
        let edited = text.replace("fake-patient-1", "fake-patient-2");
        let back = JournalLine::decode(edited.trim_end().as_bytes()).expect("still readable");
        assert!(!back.intact());
    }

    #[test]
    fn a_cut_line_is_unreadable() {
        let bytes = JournalLine::new(1, None, entry()).encode();
        assert_eq!(
            JournalLine::decode(&bytes[..bytes.len() / 2]),
            Err(Unreadable)
        );
    }
}
