//! The first chat archive (migration 4), from before message texts were encrypted: read once
//! by [`super::ChatArchive::move_plaintext`] to move its messages into the sealed archive.

use chrono::{DateTime, Utc};
use udl_derive::Entity;
use uuid::Uuid;

use super::{ArchiveRole, ArchivedMessage};

/// A message as the plaintext archive holds it.
#[derive(Entity, Clone, PartialEq)]
#[udl(
    crate = "udl_core",
    table = "chat_archive",
    store = "scylla",
    partition_key = "conversation_id, month",
    clustering_key = "sent_at, id"
)]
pub(crate) struct PlaintextArchivedMessage {
    #[udl(id, internal)]
    pub id: Uuid,
    #[udl(internal)]
    pub conversation_id: Uuid,
    #[udl(internal)]
    pub month: String,
    #[udl(internal)]
    pub sent_at: DateTime<Utc>,
    #[udl(internal)]
    pub role: ArchiveRole,
    #[udl(
        phi,
        plaintext = "the first archive table, read only to move its messages into the sealed one"
    )]
    pub text: String,
}

impl From<PlaintextArchivedMessage> for ArchivedMessage {
    fn from(m: PlaintextArchivedMessage) -> Self {
        ArchivedMessage {
            id: m.id,
            conversation_id: m.conversation_id,
            month: m.month,
            sent_at: m.sent_at,
            role: m.role,
            text: m.text,
        }
    }
}
