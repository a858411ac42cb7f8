//! Who may touch a patient's PHI, and why: decided from the care relationships and consents kept
//! in PostgreSQL. The rules, in order:
//! - platform jobs (`Role::Service` with `Purpose::System`) may;
//! - a patient may reach their own data;
//! - a clinician may, for `Purpose::Emergency`, without consent: break-glass, allowed, logged
//!   loudly and audited with the emergency purpose;
//! - anyone else needs the patient named in the context, and either an active care
//!   relationship with them (for `Purpose::Treatment`) or an active, unrevoked consent naming
//!   the actor or their role, the purpose, and the entity (or scope `all`).
//!
//! Decisions are kept for a short while (`ttl`), so a revoked consent stops working within it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use udl_core::{AccessContext, EntityMeta, Error, ErrorKind, Purpose, Result, Role};
use udl_postgres::PgStore;
use uuid::Uuid;

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

/// Decides PHI access from relationships and consents in PostgreSQL.
pub struct ConsentPolicy {
    pg: PgStore,
    ttl: Duration,
    decided: Mutex<HashMap<DecisionKey, (Decision, Instant)>>,
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
            ttl,
            decided: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ctx` may touch `entity`'s PHI.
    pub async fn decide(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
    ) -> Result<Decision> {
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
        let covered: bool = sqlx::query_scalar(
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
        .map_err(|e| udl_postgres::classify(&e, "access policy"))?;
        Ok(if covered {
            Decision::Allowed
        } else {
            Decision::Denied("no relationship or consent covers this actor, patient and purpose")
        })
    }
}

/// The error a denied access returns.
pub fn denied(entity: &EntityMeta, reason: &'static str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!("access to {} refused: {reason}", entity.name),
    )
}
