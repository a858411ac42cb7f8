//! Retention of a MongoDB collection kept from a time field of its records (`MongoStore::keeping`):
//! the server's TTL index deletes expired documents and reads leave them out; the purge makes
//! legal holds stick (a held document's expiry is moved out of the TTL index's reach, and back
//! once released), deletes what expired where the server has no TTL monitor (FerretDB) or has
//! not got to it yet, and records a receipt.

use udl_core::{field, Entity as _, EntityMeta, Filter, Result, StoreKind, Value, ValueKind};
use udl_mongo::models::PatientInteractionLog;
use udl_mongo::MongoStore;
use udl_postgres::PgStore;
use uuid::Uuid;

use super::holds::LegalHold;
use super::receipts::{DeletionReceipt, Receipts};
use super::{DataClass, RetentionPolicy};
use crate::job::JobRun;

/// A MongoDB collection kept for a retention period.
#[derive(Clone, Copy)]
pub struct RetainedCollection {
    /// Its entity.
    pub entity: &'static EntityMeta,
    /// Its data class.
    pub class: DataClass,
    /// The field naming whose data a record is (legal holds on a subject).
    pub subject_field: &'static str,
}

/// Patients' interaction logs.
pub fn interaction_logs() -> RetainedCollection {
    RetainedCollection {
        entity: PatientInteractionLog::meta(),
        class: DataClass::InteractionLogs,
        subject_field: "patient_id",
    }
}

/// What one collection's purge did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectionPurge {
    /// Records deleted.
    pub deleted: u64,
    /// Records past retention a hold keeps.
    pub held_back: u64,
    /// Records whose expiry a hold suspended in this run.
    pub holds_applied: u64,
    /// Records whose expiry came back as their hold was released.
    pub holds_released: u64,
}

impl RetainedCollection {
    /// `subject` as a value of the subject field (a patient id is a UUID there).
    fn subject_value(&self, subject: &str) -> Option<Value> {
        match self.entity.field(self.subject_field)?.kind {
            ValueKind::Uuid => Uuid::try_parse(subject).ok().map(Value::Uuid),
            _ => Some(Value::Text(subject.to_owned())),
        }
    }

    /// Whether a hold covers all of the class.
    fn class_held(&self, holds: &[LegalHold]) -> bool {
        holds.iter().any(|h| h.holds_class(self.class))
    }

    /// The records the subject holds in `holds` cover, if any.
    fn held_subjects(&self, holds: &[LegalHold]) -> Option<Filter> {
        let values: Vec<Value> = holds
            .iter()
            .filter_map(|h| h.subject_in(self.class))
            .filter_map(|s| self.subject_value(s))
            .collect();
        (!values.is_empty()).then(|| field(self.subject_field).is_in(values))
    }

    /// Suspends the expiry of what `holds` cover and resumes it for what they no longer do;
    /// (suspended, resumed).
    pub async fn apply_holds(&self, mongo: &MongoStore, holds: &[LegalHold]) -> Result<(u64, u64)> {
        if self.class_held(holds) {
            let suspended = mongo
                .suspend_expiry_unaudited(self.entity, &Filter::All)
                .await?;
            return Ok((suspended, 0));
        }
        match self.held_subjects(holds) {
            Some(held) => {
                let suspended = mongo.suspend_expiry_unaudited(self.entity, &held).await?;
                let resumed = mongo
                    .resume_expiry_unaudited(self.entity, &held.not())
                    .await?;
                Ok((suspended, resumed))
            }
            None => Ok((
                0,
                mongo
                    .resume_expiry_unaudited(self.entity, &Filter::All)
                    .await?,
            )),
        }
    }

    /// Applies `holds`, deletes what is past `policy` at `run.now`, and records a receipt
    /// when anything was deleted or held back.
    pub async fn purge(
        &self,
        mongo: &MongoStore,
        pg: &PgStore,
        policy: &RetentionPolicy,
        run: &JobRun,
        holds: &[LegalHold],
    ) -> Result<CollectionPurge> {
        let mut outcome = CollectionPurge::default();
        if run.dry_run {
            outcome.deleted = mongo.count_expired_unaudited(self.entity, run.now).await?;
        } else {
            (outcome.holds_applied, outcome.holds_released) =
                self.apply_holds(mongo, holds).await?;
            outcome.deleted = mongo.purge_expired_unaudited(self.entity, run.now).await?;
        }
        outcome.held_back = mongo
            .count_held_expired_unaudited(self.entity, run.now)
            .await?;
        if run.dry_run || (outcome.deleted == 0 && outcome.held_back == 0) {
            return Ok(outcome);
        }
        let holding: Vec<Uuid> = if outcome.held_back == 0 {
            Vec::new()
        } else {
            holds
                .iter()
                .filter(|h| h.holds_class(self.class) || h.subject_in(self.class).is_some())
                .map(|h| h.id)
                .collect()
        };
        let receipt = DeletionReceipt {
            id: Uuid::new_v4(),
            recorded_at: chrono::Utc::now(),
            job: format!("retention_purge/{}", run.id),
            data_class: self.class.as_str().to_owned(),
            store: StoreKind::MONGO.name().to_owned(),
            policy: policy.describe(),
            range_from: None,
            range_to: Some(policy.kept_since(run.now)),
            deleted: i64::try_from(outcome.deleted).unwrap_or(i64::MAX),
            held_back: i64::try_from(outcome.held_back).unwrap_or(i64::MAX),
            holds: holding,
            detail: serde_json::json!({ "collection": self.entity.name }),
        };
        Receipts::write(pg, &receipt).await?;
        Ok(outcome)
    }
}
