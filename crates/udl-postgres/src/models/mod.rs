//! The platform's relational models and the migrations that create their tables.

mod access_chain;
mod access_log;
mod app_config;
mod billing;
mod care;
mod media;
mod users;

pub use access_chain::{verify_chain, BrokenLink};
pub use access_log::{AccessOutcome, PhiAccessLogEntry};
pub use app_config::AppConfigEntry;
pub use billing::{Invoice, InvoiceStatus, Subscription, SubscriptionStatus};
pub use care::{ConsentRecord, PatientRelationship, RelationshipKind};
pub use media::{content_hash, MediaAsset, MediaStatus, NewMediaAsset};
pub use users::{User, UserCredential, UserStatus};

use crate::migrate::{Migration, Migrator};

/// Every model served through repositories, for the data layer's registry (the access log is
/// written by the audit layer alone).
pub fn entities() -> Vec<&'static udl_core::EntityMeta> {
    use udl_core::Entity as _;
    vec![
        User::meta(),
        UserCredential::meta(),
        Subscription::meta(),
        Invoice::meta(),
        PatientRelationship::meta(),
        ConsentRecord::meta(),
        AppConfigEntry::meta(),
        MediaAsset::meta(),
    ]
}

/// Migrations creating every model's table, in order.
pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(1, "users", include_str!("../../migrations/0001_users.sql")),
        Migration::new(
            2,
            "billing",
            include_str!("../../migrations/0002_billing.sql"),
        ),
        Migration::new(
            3,
            "care_and_consent",
            include_str!("../../migrations/0003_care_and_consent.sql"),
        ),
        Migration::new(
            4,
            "app_config",
            include_str!("../../migrations/0004_app_config.sql"),
        ),
        Migration::new(
            5,
            "phi_access_log",
            include_str!("../../migrations/0005_phi_access_log.sql"),
        ),
        Migration::new(
            6,
            "data_keys",
            include_str!("../../migrations/0006_data_keys.sql"),
        ),
        Migration::new(
            7,
            "phi_access_log_partitioned",
            include_str!("../../migrations/0007_phi_access_log_partitioned.sql"),
        ),
        Migration::new(
            8,
            "phi_change_history",
            include_str!("../../migrations/0008_phi_change_history.sql"),
        ),
        Migration::new(
            9,
            "token_vault",
            include_str!("../../migrations/0009_token_vault.sql"),
        ),
        Migration::new(
            10,
            "users_email_sealed",
            include_str!("../../migrations/0010_users_email_sealed.sql"),
        ),
        Migration::new(
            11,
            "names_and_relationship_kinds_sealed",
            include_str!("../../migrations/0011_names_and_relationship_kinds_sealed.sql"),
        ),
        Migration::new(
            12,
            "audit_journals",
            include_str!("../../migrations/0012_audit_journals.sql"),
        ),
        Migration::new(
            13,
            "change_capture",
            include_str!("../../migrations/0013_change_capture.sql"),
        ),
        Migration::new(
            14,
            "cdc_snapshots",
            include_str!("../../migrations/0014_cdc_snapshots.sql"),
        ),
        Migration::new(
            15,
            "media_assets",
            include_str!("../../migrations/0015_media_assets.sql"),
        ),
        Migration::new(
            16,
            "retention",
            include_str!("../../migrations/0016_retention.sql"),
        ),
    ]
}

/// The migrator for the platform's models.
pub fn migrator() -> Migrator {
    Migrator::new(migrations()).expect("built-in migration versions are unique and positive")
}
