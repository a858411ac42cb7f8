//! Therapeutic content and playbooks: curated, versioned, not patient data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use udl_core::{text_enum, Json};
use udl_derive::Entity;
use uuid::Uuid;

text_enum! {
    /// What a content item is.
    pub enum ContentKind {
        Psychoeducation => "psychoeducation", Exercise => "exercise", Playbook => "playbook",
    }
}

/// One step of a playbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaybookStep {
    /// Short title.
    pub title: String,
    /// What the assistant or clinician does.
    pub instruction: String,
}

/// A piece of therapeutic content; playbooks carry ordered steps. `content_version` counts
/// editorial revisions; `version` guards concurrent edits.
#[derive(Entity, Clone, PartialEq)]
#[udl(
    crate = "udl_core",
    table = "therapeutic_content",
    store = "mongo",
    cache = "l1_l2",
    cache_ttl = "10m"
)]
#[udl(index(name = "by_slug", fields = "slug", unique))]
#[udl(index(name = "by_media_asset", fields = "media_asset_id"))]
pub struct TherapeuticContent {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// Stable name, unique.
    #[udl(public)]
    pub slug: String,
    /// Title.
    #[udl(public)]
    pub title: String,
    /// Kind.
    #[udl(public)]
    pub kind: ContentKind,
    /// Body (markdown).
    #[udl(public)]
    pub body: String,
    /// Steps, for playbooks.
    #[udl(public)]
    pub steps: Json<Vec<PlaybookStep>>,
    /// Tags for retrieval.
    #[udl(public)]
    pub tags: Json<Vec<String>>,
    /// The media asset (in PostgreSQL's rights registry) it shows or cites, if any: once the
    /// asset's license ends, the media-rights prune hides it, then removes it.
    #[udl(internal)]
    pub media_asset_id: Option<Uuid>,
    /// Editorial revision.
    #[udl(internal)]
    pub content_version: i64,
    /// Visible to patients.
    #[udl(internal)]
    pub published: bool,
    /// Last change.
    #[udl(internal)]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}
