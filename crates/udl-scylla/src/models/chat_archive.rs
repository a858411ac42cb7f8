//! Chat message archives: every message of a conversation, partitioned by (conversation,
//! month) so no partition grows without bound, read newest first a page at a time.

use chrono::{DateTime, Datelike as _, Utc};
use std::sync::Arc;

use udl_core::{
    field, text_enum, AccessContext, Cursor, Entity as _, ErrorKind, PageOf, RecordStore,
    Repository, Result, SortKey,
};
use udl_derive::Entity;
use uuid::Uuid;

use super::plaintext_archive::PlaintextArchivedMessage;
use crate::store::ScyllaStore;

text_enum! {
    /// Who wrote an archived message.
    pub enum ArchiveRole {
        Patient => "patient",
        Assistant => "assistant",
        Clinician => "clinician",
        System => "system",
    }
}

/// One archived message. The text is PHI.
#[derive(Entity, Clone, PartialEq)]
#[udl(
    crate = "udl_core",
    table = "chat_archive_sealed",
    store = "scylla",
    partition_key = "conversation_id, month",
    clustering_key = "sent_at, id"
)]
pub struct ArchivedMessage {
    /// Message id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// The conversation.
    #[udl(internal)]
    pub conversation_id: Uuid,
    /// `YYYY-MM` of `sent_at` (UTC): the partition.
    #[udl(internal)]
    pub month: String,
    /// When it was sent.
    #[udl(internal)]
    pub sent_at: DateTime<Utc>,
    /// Author.
    #[udl(internal)]
    pub role: ArchiveRole,
    /// Text.
    #[udl(phi)]
    pub text: String,
}

impl ArchivedMessage {
    /// A message of `conversation_id` sent at `sent_at`, with its month filled in.
    pub fn new(
        conversation_id: Uuid,
        sent_at: DateTime<Utc>,
        role: ArchiveRole,
        text: String,
    ) -> Self {
        ArchivedMessage {
            id: Uuid::new_v4(),
            conversation_id,
            month: month_of(sent_at),
            sent_at,
            role,
            text,
        }
    }
}

/// The partition month of a time: `YYYY-MM` in UTC.
pub fn month_of(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// The archive: appends with the configured retention, reads newest first.
#[derive(Clone)]
pub struct ChatArchive {
    messages: Repository<ArchivedMessage>,
    store: ScyllaStore,
}

impl ChatArchive {
    /// The archive in `store` (tables from [`super::migrations`]), its records reached through
    /// `records`: `store`'s record store behind the privacy layer, which seals message texts
    /// (`udl::DataLayer::chat_archive` builds it; anything that would store them in the clear
    /// is refused with `Config`).
    pub fn new(store: &ScyllaStore, records: Arc<dyn RecordStore>) -> Result<Self> {
        Ok(ChatArchive {
            messages: Repository::new(records)?,
            store: store.clone(),
        })
    }

    /// Archives one message and returns its id; it expires after
    /// `scylla.chat_archive_retention` when that is set.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "chat_archive.append")
    )]
    pub async fn append(&self, ctx: &AccessContext, message: ArchivedMessage) -> Result<Uuid> {
        self.store
            .meter()
            .measure("chat_archive.append", async move {
                if message.month != month_of(message.sent_at) {
                    return Err(udl_core::Error::invalid(
                        "an archived message's month must be the month it was sent",
                    ));
                }
                match self.store.chat_archive_retention() {
                    Some(retention) => self.messages.create_with_ttl(ctx, message, retention).await,
                    None => self.messages.create(ctx, message).await,
                }
            })
            .await
    }

    /// Up to `limit` messages of one conversation's month, newest first; pass the returned
    /// cursor to continue.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "scylla", operation = "chat_archive.page")
    )]
    pub async fn page(
        &self,
        ctx: &AccessContext,
        conversation_id: Uuid,
        month: &str,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<PageOf<ArchivedMessage>> {
        self.store
            .meter()
            .measure("chat_archive.page", async move {
                let partition = field("conversation_id")
                    .eq(conversation_id)
                    .and(field("month").eq(month));
                let newest_first = [SortKey::desc("sent_at"), SortKey::desc("id")];
                let page = match after {
                    Some(cursor) => udl_core::Page::after(cursor, limit),
                    None => udl_core::Page::first(limit),
                };
                self.messages
                    .list(ctx, &partition, &newest_first, page)
                    .await
            })
            .await
    }

    /// Moves every message of the first, plaintext archive (migration 4) into this one, sealed,
    /// each keeping the time it had left to live, `batch` at a time; `progress` hears the count
    /// so far. The plaintext table is emptied once every message is moved; a run cut short is
    /// finished by running it again (messages already moved are recognised). Run it once no
    /// process of a version that wrote the plaintext archive is left: a message written there
    /// during the move would be emptied with the table. Returns how many were moved.
    pub async fn move_plaintext(
        &self,
        ctx: &AccessContext,
        batch: i32,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        let old = PlaintextArchivedMessage::meta();
        let records = self.store.table_records();
        let mut moved = 0;
        let mut scan = records.scan(old, batch).await?;
        while let Some(page) = scan.next_page().await? {
            for (record, ttl) in page {
                let message: ArchivedMessage =
                    PlaintextArchivedMessage::from_record(record)?.into();
                let created = match ttl {
                    Some(ttl) => self.messages.create_with_ttl(ctx, message, ttl).await,
                    None => self.messages.create(ctx, message).await,
                };
                match created {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Conflict => {} // moved by an earlier run
                    Err(e) => return Err(e),
                }
                moved += 1;
            }
            progress(moved);
        }
        let truncate = format!("TRUNCATE \"{}\".\"{}\"", self.store.keyspace(), old.name);
        self.store
            .session()
            .get_session()
            .query_unpaged(truncate, ())
            .await
            .map_err(|e| crate::error::classify(&e, "truncate"))?;
        Ok(moved)
    }
}
