//! The PHI access log: append-only, hash-chained, partitioned by month. `udl-privacy`'s audit
//! writer appends to it.

use chrono::{DateTime, Utc};
use udl_core::{text_enum, Purpose, Role};
use udl_derive::Entity;
use uuid::Uuid;

text_enum! {
    /// How an access ended.
    pub enum AccessOutcome { Allowed => "allowed", Denied => "denied", Error => "error" }
}

/// One access to PHI: who, why, what, whose, when, outcome, chained to the previous entry.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "phi_access_log", store = "postgres")]
pub struct PhiAccessLogEntry {
    /// Position in the hash chain (1, 2, ...), assigned by the writer at commit.
    #[udl(internal)]
    pub seq: i64,
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// When.
    #[udl(internal)]
    pub occurred_at: DateTime<Utc>,
    /// Who.
    #[udl(internal)]
    pub actor_id: String,
    /// Their role.
    #[udl(internal)]
    pub actor_role: Role,
    /// Why.
    #[udl(internal)]
    pub purpose: Purpose,
    /// Whose data (a token, once tokenization lands).
    #[udl(
        phi,
        plaintext = "the accounting of disclosures finds entries by patient"
    )]
    pub patient_id: Option<String>,
    /// Entity touched.
    #[udl(internal)]
    pub entity: String,
    /// Ids of the records touched (JSON array).
    #[udl(internal)]
    pub record_ids: serde_json::Value,
    /// Fields touched (JSON array of names).
    #[udl(internal)]
    pub fields: serde_json::Value,
    /// Operation (get, list, update, ...).
    #[udl(internal)]
    pub operation: String,
    /// Outcome.
    #[udl(internal)]
    pub outcome: AccessOutcome,
    /// Request id.
    #[udl(internal)]
    pub request_id: String,
    /// Hash of the previous entry.
    #[udl(internal)]
    pub prev_hash: Option<Vec<u8>>,
    /// Hash of this entry (including `prev_hash`).
    #[udl(internal)]
    pub hash: Vec<u8>,
}
