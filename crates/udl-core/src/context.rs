//! Who is asking, why, and about whom: required on every repository call.

use std::fmt;

use uuid::Uuid;

use crate::error::{Error, Result};

crate::text_enum! {
    /// The actor's role.
    #[non_exhaustive]
    pub enum Role {
        /// The patient themself.
        Patient => "patient",
        /// A therapist or clinician treating patients.
        Clinician => "clinician",
        /// Customer support staff.
        Support => "support",
        /// Billing staff.
        Billing => "billing",
        /// Administrator of the platform.
        Admin => "admin",
        /// Compliance auditor.
        Auditor => "auditor",
        /// An automated service or job.
        Service => "service",
    }
}

crate::text_enum! {
    /// Purpose of use, in HIPAA's terms.
    #[non_exhaustive]
    pub enum Purpose {
        /// Treatment of the patient.
        Treatment => "treatment",
        /// Payment for care.
        Payment => "payment",
        /// Health-care operations (quality, administration).
        Operations => "operations",
        /// The patient's own request for their data.
        PatientRequest => "patient_request",
        /// Research under an approved protocol.
        Research => "research",
        /// Emergency (break-glass) access.
        Emergency => "emergency",
        /// Platform maintenance: migrations, key rotation, retention jobs.
        System => "system",
    }
}

/// Who (actor, role), why (purpose), on whose data (patient, when known) and which request.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessContext {
    actor: String,
    role: Role,
    purpose: Purpose,
    patient: Option<String>,
    request_id: String,
    idempotency_key: Option<String>,
}

impl AccessContext {
    /// Context for `actor` acting as `role` for `purpose`, with a fresh request id.
    /// The actor id must be non-empty printable text of at most 128 bytes.
    pub fn new(actor: impl Into<String>, role: Role, purpose: Purpose) -> Result<Self> {
        let actor = checked_id("actor id", actor.into())?;
        Ok(AccessContext {
            actor,
            role,
            purpose,
            patient: None,
            request_id: Uuid::new_v4().to_string(),
            idempotency_key: None,
        })
    }

    /// Context for an internal job (`Role::Service`, `Purpose::System`).
    pub fn system(job: &'static str) -> Self {
        AccessContext {
            actor: format!("system:{job}"),
            role: Role::Service,
            purpose: Purpose::System,
            patient: None,
            request_id: Uuid::new_v4().to_string(),
            idempotency_key: None,
        }
    }

    /// The same context, about `patient`.
    pub fn for_patient(mut self, patient: impl Into<String>) -> Result<Self> {
        self.patient = Some(checked_id("patient id", patient.into())?);
        Ok(self)
    }

    /// The same context with the caller's request id (for correlation across services).
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Result<Self> {
        self.request_id = checked_id("request id", request_id.into())?;
        Ok(self)
    }

    /// The same context, its writes marked safe to repeat under `key` (the caller's
    /// idempotency key): the resilience layer then retries them after temporary errors, as it
    /// does reads. Without a key, writes are attempted once, since a write that timed out may
    /// have been applied. A repeated insert whose first attempt landed reports `Conflict`.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Result<Self> {
        self.idempotency_key = Some(checked_id("idempotency key", key.into())?);
        Ok(self)
    }

    /// The caller's idempotency key, when its writes may be repeated.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// Actor id.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Actor role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Purpose of use.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Patient whose data is concerned, when known.
    pub fn patient(&self) -> Option<&str> {
        self.patient.as_deref()
    }

    /// Request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

fn checked_id(what: &str, id: String) -> Result<String> {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} must be 1 to 128 printable characters"
        )));
    }
    Ok(id)
}

/// The patient id identifies a person, so it is never printed.
impl fmt::Debug for AccessContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessContext")
            .field("actor", &self.actor)
            .field("role", &self.role)
            .field("purpose", &self.purpose)
            .field("patient", &self.patient.as_ref().map(|_| "<redacted>"))
            .field("request_id", &self.request_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_patient() {
        let ctx = AccessContext::new("clinician-1", Role::Clinician, Purpose::Treatment)
            .unwrap()
            .for_patient("fake-patient-0001")
            .unwrap();
        assert!(!format!("{ctx:?}").contains("fake-patient-0001"));
    }

    #[test]
    fn empty_or_control_ids_are_refused() {
        assert!(AccessContext::new("", Role::Admin, Purpose::Operations).is_err());
        assert!(AccessContext::new("a\nb", Role::Admin, Purpose::Operations).is_err());
    }
}
