//! Runtime configuration and metadata entries.

use chrono::{DateTime, Utc};
use udl_derive::Entity;

/// One named configuration value (feature flags, prompts' metadata, limits).
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "app_config", store = "postgres")]
pub struct AppConfigEntry {
    /// Name, `[a-z0-9_.:-]`.
    #[udl(id, public)]
    pub key: String,
    /// JSON value.
    #[udl(internal)]
    pub value: serde_json::Value,
    /// What it is for.
    #[udl(public)]
    pub description: Option<String>,
    /// Last change.
    #[udl(internal)]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}
