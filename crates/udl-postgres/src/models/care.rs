//! Care relationships and consent: who may see whose data, for what purpose, until when.

use chrono::{DateTime, Utc};
use udl_core::{text_enum, Purpose};
use udl_derive::Entity;
use uuid::Uuid;

text_enum! {
    /// How an actor relates to a patient.
    pub enum RelationshipKind {
        Therapist => "therapist",
        Psychiatrist => "psychiatrist",
        CareCoordinator => "care_coordinator",
        Caregiver => "caregiver",
    }
}

/// That an actor cares for a patient is itself health information, so this is PHI.
#[derive(Entity, Clone, PartialEq)]
#[udl(
    crate = "udl_core",
    table = "patient_relationships",
    store = "postgres"
)]
pub struct PatientRelationship {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// The patient.
    #[udl(phi, plaintext = "the access policy looks relationships up by patient")]
    pub patient_id: Uuid,
    /// The clinician, coordinator or caregiver.
    #[udl(internal)]
    pub actor_id: Uuid,
    /// Kind of relationship.
    #[udl(phi)]
    pub kind: RelationshipKind,
    /// Start.
    #[udl(internal)]
    pub valid_from: DateTime<Utc>,
    /// End, if any.
    #[udl(internal)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Creation time.
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}

/// A patient's consent that a grantee (an actor, or everyone with a role) may use their data
/// for a purpose, within a scope, until it expires or is revoked.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "consent_records", store = "postgres")]
pub struct ConsentRecord {
    /// Id.
    #[udl(id, internal)]
    pub id: Uuid,
    /// The patient consenting.
    #[udl(phi, plaintext = "the access policy looks consents up by patient")]
    pub patient_id: Uuid,
    /// A specific actor, if the consent names one.
    #[udl(internal)]
    pub grantee_id: Option<Uuid>,
    /// A role, if the consent covers everyone with it.
    #[udl(internal)]
    pub grantee_role: Option<String>,
    /// Purpose of use consented to.
    #[udl(internal)]
    pub purpose: Purpose,
    /// Which data: "conversations", "assessments", "all", ...
    #[udl(phi, plaintext = "the access policy matches consents by scope")]
    pub scope: String,
    /// When given.
    #[udl(internal)]
    pub granted_at: DateTime<Utc>,
    /// When it lapses, if ever.
    #[udl(internal)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When revoked, if it was.
    #[udl(internal)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    #[udl(version, internal)]
    pub version: i64,
}
