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

use crate::migrate::{MongoMigration, MongoMigrator, Step};

/// Every model, for the data layer's registry.
pub fn entities() -> Vec<&'static udl_core::EntityMeta> {
    use udl_core::Entity as _;
    vec![
        DocumentChunk::meta(),
        Conversation::meta(),
        TherapeuticContent::meta(),
        PatientInteractionLog::meta(),
        AiResponse::meta(),
    ]
}

/// Migrations creating every model's collection and indexes, in order.
pub fn migrations() -> Vec<MongoMigration> {
    let mut steps = Vec::new();
    steps.push(Step::collection_of::<DocumentChunk>());
    steps.extend(Step::indexes_of::<DocumentChunk>());
    steps.push(Step::collection_of::<Conversation>());
    steps.extend(Step::indexes_of::<Conversation>());
    steps.push(Step::collection_of::<TherapeuticContent>());
    steps.extend(Step::indexes_of::<TherapeuticContent>());
    steps.push(Step::collection_of::<PatientInteractionLog>());
    steps.extend(Step::indexes_of::<PatientInteractionLog>());
    steps.push(Step::collection_of::<AiResponse>());
    steps.extend(Step::indexes_of::<AiResponse>());
    vec![MongoMigration::new(1, "collections_and_indexes", steps)]
}

/// The migrator for the platform's MongoDB models.
pub fn migrator() -> MongoMigrator {
    MongoMigrator::new(migrations()).expect("built-in migration versions are unique and positive")
}
