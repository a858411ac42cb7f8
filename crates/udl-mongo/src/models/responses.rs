//! AI responses and the feedback they received.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use udl_core::Json;
use udl_derive::Entity;
use uuid::Uuid;

/// Feedback on one response, from the patient or a reviewing clinician.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// 1 (harmful) to 5 (very helpful).
    pub rating: i64,
    /// Free comment.
    pub comment: Option<String>,
    /// Who gave it (actor id).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The comment can describe the patient, so `Debug` hides it.
impl std::fmt::Debug for Feedback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feedback")
            .field("rating", &self.rating)
            .field("comment", &self.comment.as_ref().map(|_| "<redacted>"))
            .field("by", &self.by)
            .field("at", &self.at)
            .finish()
    }
}

/// One generated answer, with what produced it and how it was received.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "ai_responses", store = "mongo")]
#[udl(index(name = "by_conversation", fields = "conversation_id, created_at"))]
pub struct AiResponse {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// Conversation.
    #[udl(internal)]
    pub conversation_id: Uuid,
    /// The patient.
    #[udl(
        phi,
        plaintext = "records are found and access-checked by their patient"
    )]
    pub patient_id: Uuid,
    /// Model name.
    #[udl(internal)]
    pub model: String,
    /// Hash of the prompt (the prompt itself lives in the conversation).
    #[udl(internal)]
    pub prompt_hash: String,
    /// The answer.
    #[udl(phi)]
    pub response_text: String,
    /// Chunks retrieved for the answer.
    #[udl(internal)]
    pub retrieved_chunk_ids: Json<Vec<Uuid>>,
    /// Prompt tokens.
    #[udl(internal)]
    pub tokens_in: i64,
    /// Completion tokens.
    #[udl(internal)]
    pub tokens_out: i64,
    /// Generation time.
    #[udl(internal)]
    pub latency_ms: i64,
    /// Feedback, once given.
    #[udl(phi)]
    pub feedback: Option<Json<Feedback>>,
    /// Creation time.
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
}
