//! Patient interaction logs: what a patient did in the app, for care and safety review.

use chrono::{DateTime, Utc};
use udl_derive::Entity;
use uuid::Uuid;

/// One interaction of a patient (opened an exercise, completed a check-in, flagged risk).
#[derive(Entity, Clone, PartialEq)]
#[udl(
    crate = "udl_core",
    table = "patient_interaction_logs",
    store = "mongo"
)]
#[udl(index(name = "by_patient", fields = "patient_id, occurred_at"))]
pub struct PatientInteractionLog {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// The patient.
    #[udl(
        phi,
        plaintext = "records are found and access-checked by their patient"
    )]
    pub patient_id: Uuid,
    /// Conversation it happened in, if any.
    #[udl(internal)]
    pub conversation_id: Option<Uuid>,
    /// Kind of interaction ("check_in", "exercise_completed", "risk_flag", ...).
    #[udl(phi)]
    pub kind: String,
    /// Details (answers, scores).
    #[udl(phi)]
    pub detail: serde_json::Value,
    /// When.
    #[udl(internal)]
    pub occurred_at: DateTime<Utc>,
}
