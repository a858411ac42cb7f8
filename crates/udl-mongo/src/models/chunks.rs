//! Document chunks and their embeddings, for retrieval-augmented generation.

use chrono::{DateTime, Utc};
use udl_derive::Entity;
use uuid::Uuid;

/// One chunk of a source document with its embedding. Chunks can come from documents a
/// patient uploaded, so the text and its embedding (which can be inverted to text) are PHI.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "document_chunks", store = "mongo")]
#[udl(index(name = "by_document", fields = "document_id, chunk_index", unique))]
#[udl(index(name = "by_content_type", fields = "content_type"))]
#[udl(index(name = "by_media_asset", fields = "source_media_asset_id"))]
pub struct DocumentChunk {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// The source document.
    #[udl(internal)]
    pub document_id: Uuid,
    /// Position of this chunk in the document, from 0.
    #[udl(internal)]
    pub chunk_index: i64,
    /// The chunk's text.
    #[udl(phi)]
    pub text: String,
    /// Embedding of the text.
    #[udl(phi, plaintext = "similarity search")]
    pub embedding: Vec<f32>,
    /// Model that produced the embedding.
    #[udl(internal)]
    pub embedding_model: String,
    /// Embedding dimension (the model's).
    #[udl(internal)]
    pub dimension: i64,
    /// Content type used to prefilter searches ("playbook", "patient_upload", ...).
    #[udl(internal)]
    pub content_type: String,
    /// Free metadata (page, section, language).
    #[udl(internal)]
    pub metadata: serde_json::Value,
    /// The media asset (in PostgreSQL's rights registry) the document came from, if any: once
    /// the asset's license ends, the media-rights prune hides the chunk, then removes it.
    #[udl(internal)]
    pub source_media_asset_id: Option<Uuid>,
    /// Creation time.
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
}
