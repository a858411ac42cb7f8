//! The platform's MongoDB models: retrieval chunks, conversations, therapeutic content,
//! interaction logs, AI responses and their feedback.

mod chunks;
mod content;
mod conversations;
mod interactions;
mod responses;

pub use chunks::DocumentChunk;
pub use content::{ContentKind, PlaybookStep, TherapeuticContent};
pub use conversations::{Conversation, ConversationStatus, Message, MessageRole};
pub use interactions::PatientInteractionLog;
pub use responses::{AiResponse, Feedback};
