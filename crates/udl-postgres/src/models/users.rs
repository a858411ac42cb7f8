//! Users and their credentials.

use chrono::{DateTime, Utc};
use udl_core::{text_enum, Role};
use udl_derive::Entity;
use uuid::Uuid;

text_enum! {
    /// Lifecycle state of an account.
    pub enum UserStatus { Active => "active", Suspended => "suspended", Deleted => "deleted" }
}

/// A person using the platform: patient, clinician or staff.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "users", store = "postgres")]
pub struct User {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// Login e-mail; unique without regard to case (through its blind index).
    #[udl(pii, blind_index = "case_insensitive", mask = "email_domain")]
    pub email: String,
    /// Name shown in the app.
    #[udl(pii, mask = "full")]
    pub display_name: String,
    /// Role.
    #[udl(internal)]
    pub role: Role,
    /// Account state.
    #[udl(internal)]
    pub status: UserStatus,
    /// Creation time.
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[udl(internal)]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}

/// A user's password hash. The password itself is never stored or accepted here.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "user_credentials", store = "postgres")]
pub struct UserCredential {
    /// The user this belongs to.
    #[udl(id, internal)]
    pub user_id: Uuid,
    /// PHC string of the hash (argon2id or similar).
    #[udl(
        pii,
        mask = "full",
        plaintext = "a salted one-way hash, never the password"
    )]
    pub password_hash: String,
    /// Hash algorithm name.
    #[udl(internal)]
    pub algorithm: String,
    /// Last change.
    #[udl(internal)]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}
