//! Who may touch a patient's PHI, and why: decided from the care relationships and consents kept
//! in PostgreSQL. The rules, in order:
//! - entities with PII but no PHI (accounts, credentials) serve the platform itself: every
//!   authenticated actor may, and every access is audited;
//! - platform jobs (`Role::Service` with `Purpose::System`) may;
//! - a patient may reach their own data;
//! - a clinician may, for `Purpose::Emergency`, without consent: break-glass, allowed, logged
//!   loudly and audited with the emergency purpose;
//! - anyone else needs the patient named in the context, and either an active care
//!   relationship with them (for `Purpose::Treatment`) or an active, unrevoked consent naming
//!   the actor or their role, the purpose, and the entity (or scope `all`).
//!
//! - a record naming another patient (in its `patient_id` field) than the context names is
//!   refused, for reads and writes alike;
//! - turning a token back into its value is for the detokenizing role and purpose pairs only
//!   ([`DEFAULT_DETOKENIZERS`] unless set otherwise).
//!
//! Every access rule lives here; the audit layer, the token vault and the change history ask
//! this policy and record what it decided. Decisions are kept for a short while (`ttl`), so a
//! revoked consent stops working within it. Its look-ups run through PostgreSQL's resilience
//! layer (`through`), under the same timeouts and breaker as every other call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use udl_core::{AccessContext, EntityMeta, Error, ErrorKind, Purpose, Record, Result, Role, Value};
use udl_postgres::PgStore;
use udl_resilience::ResilientStore;
use uuid::Uuid;

use crate::plain::id_text;

/// The field that names a record's patient, by the platform's convention.
pub const PATIENT_FIELD: &str = "patient_id";

/// Role and purpose pairs allowed to detokenize by default: clinicians treating (or in an
/// emergency), patients asking for their own data, and platform jobs.
pub const DEFAULT_DETOKENIZERS: &[(Role, Purpose)] = &[
    (Role::Clinician, Purpose::Treatment),
    (Role::Clinician, Purpose::Emergency),
    (Role::Patient, Purpose::PatientRequest),
    (Role::Service, Purpose::System),
];

/// Why a record naming another patient is refused.
pub const FOREIGN_RECORD: &str =
    "a record belongs to another patient than the access context names";

/// The outcome of a policy check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the rules.
    Allowed,
    /// Allowed as an emergency override, to be flagged.
    BreakGlass,
    /// Refused, with the reason (never a value).
    Denied(&'static str),
}

impl Decision {
    /// Why the access is refused, if it is.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Decision::Denied(reason) => Some(reason),
            Decision::Allowed | Decision::BreakGlass => None,
        }
    }
}

/// Decides every access to PII and PHI: from relationships and consents in PostgreSQL, the
/// records' patients, and the detokenizing roles.
pub struct ConsentPolicy {
    pg: PgStore,
    guard: Option<Arc<ResilientStore>>,
    ttl: Duration,
    decided: Mutex<HashMap<DecisionKey, (Decision, Instant)>>,
    detokenizers: Vec<(Role, Purpose)>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    actor: Uuid,
    role: Role,
    purpose: Purpose,
    patient: Uuid,
    entity: &'static str,
}

/// Decisions kept at most; beyond it the table is cleared (it refills at the store's pace).
const MAX_DECISIONS: usize = 100_000;

impl ConsentPolicy {
    /// A policy reading `pg`, keeping each decision for `ttl`.
    pub fn new(pg: PgStore, ttl: Duration) -> Self {
        ConsentPolicy {
            pg,
            guard: None,
            ttl,
            decided: Mutex::new(HashMap::new()),
            detokenizers: DEFAULT_DETOKENIZERS.to_vec(),
        }
    }

    /// The same policy, its look-ups run through `postgres` (PostgreSQL's resilience layer).
    pub fn through(mut self, postgres: Arc<ResilientStore>) -> Self {
        self.guard = Some(postgres);
        self
    }

    /// The same policy, allowing exactly these role and purpose pairs to detokenize.
    pub fn allowing_detokenizers(mut self, allowed: &[(Role, Purpose)]) -> Self {
        self.detokenizers = allowed.to_vec();
        self
    }

    /// Whether `ctx` may turn a token back into its value.
    pub fn may_detokenize(&self, ctx: &AccessContext) -> Decision {
        if self.detokenizers.contains(&(ctx.role(), ctx.purpose())) {
            Decision::Allowed
        } else {
            Decision::Denied("this role and purpose may not detokenize")
        }
    }

    /// Whether `ctx` may touch `record` of an entity it was allowed: refused when the record
    /// names another patient than the context does.
    pub fn admits_record(&self, ctx: &AccessContext, record: &Record) -> Decision {
        let foreign = ctx
            .patient()
            .is_some_and(|patient| patient_of(record).is_some_and(|p| p != patient));
        if foreign {
            Decision::Denied(FOREIGN_RECORD)
        } else {
            Decision::Allowed
        }
    }

    /// Whether `ctx` may touch `entity`'s PII or PHI.
    pub async fn decide(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
    ) -> Result<Decision> {
        if !entity.has_phi() {
            return Ok(Decision::Allowed);
        }
        if ctx.role() == Role::Service && ctx.purpose() == Purpose::System {
            return Ok(Decision::Allowed);
        }
        let Some(patient) = ctx.patient() else {
            return Ok(Decision::Denied(
                "PHI access needs the patient named in the access context (for_patient)",
            ));
        };
        if ctx.role() == Role::Patient {
            return Ok(if ctx.actor() == patient {
                Decision::Allowed
            } else {
                Decision::Denied("a patient may reach only their own data")
            });
        }
        if ctx.purpose() == Purpose::Emergency {
            return Ok(if ctx.role() == Role::Clinician {
                Decision::BreakGlass
            } else {
                Decision::Denied("only clinicians may use emergency access")
            });
        }
        let (Ok(actor), Ok(patient)) = (Uuid::parse_str(ctx.actor()), Uuid::parse_str(patient))
        else {
            return Ok(Decision::Denied(
                "no relationship or consent covers this actor and patient",
            ));
        };
        let key = DecisionKey {
            actor,
            role: ctx.role(),
            purpose: ctx.purpose(),
            patient,
            entity: entity.name,
        };
        if let Some(decision) = self.remembered(&key) {
            return Ok(decision);
        }
        let decision = self.look_up(&key).await?;
        let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        if decided.len() >= MAX_DECISIONS {
            decided.clear();
        }
        decided.insert(key, (decision, Instant::now() + self.ttl));
        Ok(decision)
    }

    fn remembered(&self, key: &DecisionKey) -> Option<Decision> {
        let decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        match decided.get(key) {
            Some((decision, until)) if Instant::now() < *until => Some(*decision),
            _ => None,
        }
    }

    async fn look_up(&self, key: &DecisionKey) -> Result<Decision> {
        let covered = match &self.guard {
            Some(postgres) => {
                postgres
                    .read("policy", "consent_records", || self.covered(key))
                    .await?
            }
            None => self.covered(key).await?,
        };
        Ok(if covered {
            Decision::Allowed
        } else {
            Decision::Denied("no relationship or consent covers this actor, patient and purpose")
        })
    }

    /// Whether a relationship or a consent covers `key`.
    async fn covered(&self, key: &DecisionKey) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT ($4 = 'treatment' AND EXISTS (
                        SELECT 1 FROM patient_relationships
                        WHERE patient_id = $1 AND actor_id = $2
                          AND valid_from <= now() AND (valid_until IS NULL OR valid_until > now())))
                 OR EXISTS (
                        SELECT 1 FROM consent_records
                        WHERE patient_id = $1 AND (grantee_id = $2 OR grantee_role = $3)
                          AND purpose = $4 AND (scope = 'all' OR scope = $5)
                          AND granted_at <= now() AND revoked_at IS NULL
                          AND (expires_at IS NULL OR expires_at > now()))",
        )
        .bind(key.patient)
        .bind(key.actor)
        .bind(key.role.as_str())
        .bind(key.purpose.as_str())
        .bind(key.entity)
        .fetch_one(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "access policy"))
    }
}

/// The patient `record` names, if its entity has a patient field.
pub fn patient_of(record: &Record) -> Option<String> {
    match record.get(PATIENT_FIELD)? {
        id @ (Value::Text(_) | Value::Uuid(_)) => Some(id_text(id)),
        _ => None,
    }
}

/// The error a denied access returns.
pub fn denied(entity: &EntityMeta, reason: &'static str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!("access to {} refused: {reason}", entity.name),
    )
}
