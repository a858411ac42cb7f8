//! Chat conversations between a patient and the assistant (and clinicians).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use udl_core::{text_enum, Json};
use udl_derive::Entity;
use uuid::Uuid;

text_enum! {
    /// Whether a conversation is going on.
    pub enum ConversationStatus { Active => "active", Closed => "closed", Escalated => "escalated" }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    /// The patient.
    Patient,
    /// The AI assistant.
    Assistant,
    /// A clinician joining the conversation.
    Clinician,
    /// System instructions.
    System,
}

/// One message of a conversation.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: MessageRole,
    /// Text.
    pub text: String,
    /// When it was sent.
    pub at: DateTime<Utc>,
}

/// Message text is PHI, so `Debug` shows only the role and time.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("role", &self.role)
            .field("text", &"<redacted>")
            .field("at", &self.at)
            .finish()
    }
}

/// A conversation and its messages.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "conversations", store = "mongo")]
#[udl(index(name = "by_patient", fields = "patient_id, updated_at"))]
pub struct Conversation {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// The patient.
    #[udl(
        phi,
        plaintext = "records are found and access-checked by their patient"
    )]
    pub patient_id: Uuid,
    /// Title shown in the app (derived from the content, so PHI).
    #[udl(phi)]
    pub title: Option<String>,
    /// Messages, oldest first.
    #[udl(phi)]
    pub messages: Json<Vec<Message>>,
    /// State.
    #[udl(internal)]
    pub status: ConversationStatus,
    /// Start.
    #[udl(internal)]
    pub started_at: DateTime<Utc>,
    /// Last change.
    #[udl(internal)]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}
