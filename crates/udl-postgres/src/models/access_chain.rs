//! The hash chain of the PHI access log: each entry's hash covers its content and the hash of
//! the entry before it, so editing an entry breaks its own hash and deleting one breaks the
//! link of the entry after it. Hashes cover timestamps at PostgreSQL's precision (microseconds),
//! so a chain verifies after a round trip through the table.

use sha2::{Digest as _, Sha256};

use super::PhiAccessLogEntry;

/// Where a chain stops holding, by the index (in the order given) of the first bad entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokenLink {
    /// The entry's content no longer matches its hash: it was edited.
    Altered {
        /// Index of the entry.
        index: usize,
    },
    /// The entry does not follow the one before it: entries between were deleted or reordered.
    Unlinked {
        /// Index of the entry.
        index: usize,
    },
}

fn put(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

impl PhiAccessLogEntry {
    /// The hash of this entry's content after `prev_hash` (every part length-prefixed).
    pub fn chain_hash(&self, prev_hash: Option<&[u8]>) -> Vec<u8> {
        let mut h = Sha256::new();
        put(&mut h, self.id.as_bytes());
        put(&mut h, &self.occurred_at.timestamp_micros().to_be_bytes());
        put(&mut h, self.actor_id.as_bytes());
        put(&mut h, self.actor_role.as_str().as_bytes());
        put(&mut h, self.purpose.as_str().as_bytes());
        match &self.patient_id {
            Some(patient) => put(&mut h, &[&[1u8][..], patient.as_bytes()].concat()),
            None => put(&mut h, &[0u8]),
        }
        put(&mut h, self.entity.as_bytes());
        put(&mut h, self.record_ids.to_string().as_bytes());
        put(&mut h, self.fields.to_string().as_bytes());
        put(&mut h, self.operation.as_bytes());
        put(&mut h, self.outcome.as_str().as_bytes());
        put(&mut h, self.request_id.as_bytes());
        put(&mut h, prev_hash.unwrap_or_default());
        h.finalize().to_vec()
    }

    /// This entry linked after `prev_hash` (`None` for the first of a chain), hash set.
    pub fn sealed_after(mut self, prev_hash: Option<Vec<u8>>) -> Self {
        self.hash = self.chain_hash(prev_hash.as_deref());
        self.prev_hash = prev_hash;
        self
    }
}

/// Checks `entries` in chain order; `before` is the hash of the entry preceding the first
/// (`None` when they start the chain).
pub fn verify_chain(
    entries: &[PhiAccessLogEntry],
    before: Option<&[u8]>,
) -> Result<(), BrokenLink> {
    let mut expected_prev = before.map(<[u8]>::to_vec);
    for (index, entry) in entries.iter().enumerate() {
        if entry.prev_hash != expected_prev {
            return Err(BrokenLink::Unlinked { index });
        }
        if entry.chain_hash(entry.prev_hash.as_deref()) != entry.hash {
            return Err(BrokenLink::Altered { index });
        }
        expected_prev = Some(entry.hash.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use udl_core::{Purpose, Role};

    use crate::models::AccessOutcome;

    fn chain(n: usize) -> Vec<PhiAccessLogEntry> {
        let mut prev = None;
        (0..n)
            .map(|i| {
                let entry = PhiAccessLogEntry {
                    seq: i as i64 + 1,
                    id: uuid::Uuid::new_v4(),
                    occurred_at: Utc
                        .timestamp_opt(1_780_000_000 + i as i64, 123_456_789)
                        .unwrap(),
                    actor_id: "fake-clinician-1".into(),
                    actor_role: Role::Clinician,
                    purpose: Purpose::Treatment,
                    patient_id: Some("fake-patient-7".into()),
                    entity: "session_notes".into(),
                    record_ids: serde_json::json!([format!("note-{i}")]),
                    fields: serde_json::json!(["body"]),
                    operation: "get".into(),
                    outcome: AccessOutcome::Allowed,
                    request_id: format!("req-{i}"),
                    prev_hash: None,
                    hash: Vec::new(),
                }
                .sealed_after(prev.take());
                prev = Some(entry.hash.clone());
                entry
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_any_edit_or_deletion_is_found() {
        let entries = chain(10);
        assert_eq!(verify_chain(&entries, None), Ok(()));
        assert_eq!(verify_chain(&entries[4..], Some(&entries[3].hash)), Ok(()));

        let mut edited = entries.clone();
        edited[6].outcome = AccessOutcome::Denied;
        assert_eq!(
            verify_chain(&edited, None),
            Err(BrokenLink::Altered { index: 6 })
        );

        let mut deleted = entries.clone();
        deleted.remove(3);
        assert_eq!(
            verify_chain(&deleted, None),
            Err(BrokenLink::Unlinked { index: 3 })
        );

        let mut swapped = entries.clone();
        swapped.swap(2, 5);
        assert_eq!(
            verify_chain(&swapped, None),
            Err(BrokenLink::Unlinked { index: 2 })
        );

        let mut rehashed = entries;
        rehashed[8].actor_id = "someone-else".into();
        let prev = rehashed[8].prev_hash.clone();
        rehashed[8] = rehashed[8].clone().sealed_after(prev);
        assert_eq!(
            verify_chain(&rehashed, None),
            Err(BrokenLink::Unlinked { index: 9 }),
            "re-sealing an edited entry breaks the next link"
        );
    }

    #[test]
    fn timestamps_are_hashed_at_postgresql_precision() {
        let entry = chain(1).remove(0);
        let mut stored = entry.clone();
        stored.occurred_at = Utc.timestamp_opt(1_780_000_000, 123_456_000).unwrap();
        assert_eq!(
            stored.chain_hash(None),
            entry.hash,
            "nanoseconds beyond micros are not stored"
        );
    }
}
