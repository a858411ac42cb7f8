//! [`AuditedStore`]: every operation on a PII- or PHI-bearing entity is first put to the access
//! policy, and leaves exactly one entry in the PHI access log — who, why, what, whose, when, and how it
//! ended (allowed, denied, error). Reads fail closed: data is returned only after its entry is
//! durable. Writes are recorded before they are sent, so no PHI is written unaudited; a write
//! that then fails adds an `error` entry. Records naming another patient than the context's
//! are refused. Put this layer above the cache, so cache hits are audited like any other read.

use std::sync::Arc;
use std::time::Duration;
use udl_core::op;

use async_trait::async_trait;
use chrono::Utc;
use udl_core::{
    AccessContext, Capabilities, Capability, EntityMeta, Filter, Query, Record, RecordStore,
    Result, Sensitivity, StoreLayer, ValidChanges, Value,
};
use udl_postgres::models::{AccessOutcome, PhiAccessLogEntry};

use super::writer::{phi_refused, AuditWriter};
use crate::history::{phi_fields, whole_records, ChangeHistory, FieldChange};
use crate::plain::id_text;
use crate::policy::{denied, patient_of, ConsentPolicy, Decision, PATIENT_FIELD};

/// Puts every access to PII- or PHI-bearing entities in `inner` to a policy and records it
/// through an [`AuditWriter`].
pub struct AuditedStore {
    inner: Arc<dyn RecordStore>,
    writer: Arc<AuditWriter>,
    policy: Arc<ConsentPolicy>,
    history: Option<Arc<ChangeHistory>>,
}

/// What one operation touched.
struct Access<'a> {
    ctx: &'a AccessContext,
    entity: &'static EntityMeta,
    operation: &'static str,
    record_ids: Vec<serde_json::Value>,
    fields: Vec<&'static str>,
    patient: Option<String>,
    /// Why the policy refuses one of the records touched, if it does.
    refused_record: Option<&'static str>,
}

/// What a write was found to do before it is sent.
#[derive(Default)]
struct Prepared {
    /// Its changes to PHI fields (worked out only when history is kept).
    changes: Vec<FieldChange>,
    /// Why the policy refuses the record it changes, if it does.
    refused_record: Option<&'static str>,
}

/// A record id in an entry's `record_ids`: integers as numbers, other ids as text.
fn id_json(id: &Value) -> serde_json::Value {
    match id {
        Value::Int(i) => (*i).into(),
        other => id_text(other).into(),
    }
}

/// The PII and PHI fields of `entity`: what a read of a whole record discloses.
fn sensitive_fields(entity: &'static EntityMeta) -> Vec<&'static str> {
    entity
        .fields
        .iter()
        .filter(|f| f.sensitivity >= Sensitivity::Pii)
        .map(|f| f.name)
        .collect()
}

/// The patient the records belong to, when they all name the same one.
fn common_patient<'r>(records: impl IntoIterator<Item = &'r Record>) -> Option<String> {
    let mut patient: Option<String> = None;
    for record in records {
        let this = patient_of(record)?;
        match &patient {
            Some(p) if *p != this => return None,
            _ => patient = Some(this),
        }
    }
    patient
}

impl<'a> Access<'a> {
    fn new(ctx: &'a AccessContext, entity: &'static EntityMeta, operation: &'static str) -> Self {
        Access {
            ctx,
            entity,
            operation,
            record_ids: Vec::new(),
            fields: Vec::new(),
            patient: ctx.patient().map(str::to_owned),
            refused_record: None,
        }
    }

    fn of_id(mut self, id: &Value) -> Self {
        self.record_ids.push(id_json(id));
        self
    }

    /// The records read or written: their ids, the sensitive fields they disclose, their
    /// patient when the context does not name one, and whether `policy` refuses one of them.
    fn of_records<'r>(
        mut self,
        policy: &ConsentPolicy,
        records: impl IntoIterator<Item = &'r Record> + Clone,
    ) -> Self {
        let id_field = self.entity.id_field;
        self.record_ids = records
            .clone()
            .into_iter()
            .filter_map(|r| r.get(id_field).map(id_json))
            .collect();
        if !self.record_ids.is_empty() {
            self.fields = sensitive_fields(self.entity);
        }
        if self.ctx.patient().is_some() {
            self.refused_record = records
                .into_iter()
                .find_map(|r| policy.admits_record(self.ctx, r).refusal());
        } else {
            self.patient = common_patient(records);
        }
        self
    }

    fn entry(&self, outcome: AccessOutcome) -> PhiAccessLogEntry {
        PhiAccessLogEntry {
            patient_id: self.patient.clone(),
            record_ids: self.record_ids.clone().into(),
            fields: self.fields.clone().into(),
            ..new_entry(self.ctx, self.entity.name, self.operation, outcome)
        }
    }
}

/// An entry for an access by `ctx` to `entity` through `operation`, ending in `outcome`; it
/// names no patient, record or field until the caller sets them.
pub fn new_entry(
    ctx: &AccessContext,
    entity: &str,
    operation: &str,
    outcome: AccessOutcome,
) -> PhiAccessLogEntry {
    PhiAccessLogEntry {
        seq: 0,
        id: uuid::Uuid::new_v4(),
        occurred_at: Utc::now(),
        actor_id: ctx.actor().to_owned(),
        actor_role: ctx.role(),
        purpose: ctx.purpose(),
        patient_id: None,
        entity: entity.to_owned(),
        record_ids: serde_json::Value::Array(Vec::new()),
        fields: serde_json::Value::Array(Vec::new()),
        operation: operation.to_owned(),
        outcome,
        request_id: ctx.request_id().to_owned(),
        prev_hash: None,
        hash: Vec::new(),
    }
}

impl AuditedStore {
    /// `inner` with every access to its PII and PHI put to `policy` and recorded by
    /// `writer`, and, with `history`, every change to a PHI field kept there.
    pub fn new(
        inner: Arc<dyn RecordStore>,
        writer: Arc<AuditWriter>,
        policy: Arc<ConsentPolicy>,
        history: Option<Arc<ChangeHistory>>,
    ) -> Arc<Self> {
        Arc::new(AuditedStore {
            inner,
            writer,
            policy,
            history,
        })
    }

    /// Creating `records`, prepared: the PHI they bring when history is kept.
    fn creating(&self, entity: &'static EntityMeta, records: &[Record]) -> Prepared {
        Prepared {
            changes: match &self.history {
                Some(_) => whole_records(entity, records, true),
                None => Vec::new(),
            },
            refused_record: None,
        }
    }

    /// Changing the record `id`, prepared: read first when its patient must be checked or
    /// history is kept and the change `touches_phi`; `changes` gives the history from the
    /// record as it is.
    async fn changing(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        touches_phi: bool,
        changes: impl FnOnce(&Record) -> Vec<FieldChange>,
    ) -> Result<Prepared> {
        let checks_patient = ctx.patient().is_some() && entity.field(PATIENT_FIELD).is_some();
        let keeps_history = self.history.is_some() && touches_phi;
        if !checks_patient && !keeps_history {
            return Ok(Prepared::default());
        }
        let Some(now) = self.inner.fetch(ctx, entity, id).await? else {
            return Ok(Prepared::default());
        };
        Ok(Prepared {
            refused_record: self.policy.admits_record(ctx, &now).refusal(),
            changes: if keeps_history {
                changes(&now)
            } else {
                Vec::new()
            },
        })
    }

    /// Refuses `access` with `reason`: recorded as denied (best effort, as the access does
    /// not go ahead either way).
    async fn deny(&self, access: &Access<'_>, reason: &'static str) -> udl_core::Error {
        self.record_best_effort(access, AccessOutcome::Denied).await;
        denied(access.entity, reason).with_store(self.inner.kind())
    }

    /// Records `access` as ended in `outcome` when the caller is getting an error anyway:
    /// a failure to record it is logged, and that error is still the one returned.
    async fn record_best_effort(&self, access: &Access<'_>, outcome: AccessOutcome) {
        if let Err(audit) = self.writer.append(access.entry(outcome)).await {
            tracing::error!(error = %audit, entity = access.entity.name, operation = access.operation,
                outcome = outcome.as_str(), "a refused or failed PHI access could not be recorded");
        }
    }

    /// Puts `access` to the policy; a denial is recorded and returned as `PermissionDenied`.
    async fn admit(&self, access: &Access<'_>) -> Result<()> {
        match self.policy.decide(access.ctx, access.entity).await {
            Ok(Decision::Allowed) => Ok(()),
            Ok(Decision::BreakGlass) => {
                tracing::warn!(
                    actor = access.ctx.actor(),
                    entity = access.entity.name,
                    operation = access.operation,
                    "break-glass PHI access"
                );
                Ok(())
            }
            Ok(Decision::Denied(reason)) => Err(self.deny(access, reason).await),
            Err(e) => {
                self.record_failure(access).await;
                Err(phi_refused(
                    "the access policy could not be checked",
                    "access policy",
                    e.kind(),
                ))
            }
        }
    }

    /// Records `access` and then hands back `result`: a read's data is returned only once its
    /// entry is durable, and a failed operation is recorded as `error` (best effort: its own
    /// error is what the caller needs).
    async fn after<T>(&self, access: Access<'_>, result: Result<T>) -> Result<T> {
        if let Some(reason) = access.refused_record {
            // The records were read but not returned: the entry names no field as disclosed.
            let access = Access {
                fields: Vec::new(),
                ..access
            };
            return Err(self.deny(&access, reason).await);
        }
        match result {
            Ok(value) => {
                self.writer
                    .append(access.entry(AccessOutcome::Allowed))
                    .await?;
                Ok(value)
            }
            Err(e) => {
                self.record_failure(&access).await;
                Err(e)
            }
        }
    }

    async fn record_failure(&self, access: &Access<'_>) {
        self.record_best_effort(access, AccessOutcome::Error).await;
    }

    /// Puts a read to the policy, runs it, and records it with what `touched` says it
    /// returned; its data comes back only once that entry is durable.
    async fn read<T>(
        &self,
        access: Access<'_>,
        read: impl std::future::Future<Output = Result<T>>,
        touched: impl for<'x> FnOnce(Access<'x>, &T) -> Access<'x>,
    ) -> Result<T> {
        self.admit(&access).await?;
        let result = read.await;
        let access = match &result {
            Ok(value) => touched(access, value),
            Err(_) => access,
        };
        self.after(access, result).await
    }

    /// Puts a write to the policy, then `prepare`s it (what it does to PHI fields, and whether
    /// the record belongs to another patient), records it — the access, then with history
    /// kept its changes — and only then sends it; a failure adds an `error` entry.
    async fn write<T>(
        &self,
        access: Access<'_>,
        prepare: impl std::future::Future<Output = Result<Prepared>>,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.admit(&access).await?;
        let prepared = match prepare.await {
            Ok(prepared) => prepared,
            Err(e) => {
                self.record_failure(&access).await;
                return Err(e);
            }
        };
        if let Some(reason) = access.refused_record.or(prepared.refused_record) {
            return Err(self.deny(&access, reason).await);
        }
        self.writer
            .append(access.entry(AccessOutcome::Allowed))
            .await?;
        if let Some(history) = &self.history {
            // The history names the change itself: a record inserted, updated or deleted.
            let operation = match access.operation {
                op::UPDATE => "update",
                op::DELETE => "delete",
                _ => "insert",
            };
            let recorded = history
                .record(
                    access.ctx,
                    self.inner.kind(),
                    access.entity,
                    operation,
                    prepared.changes,
                )
                .await;
            if let Err(e) = recorded {
                self.record_failure(&access).await;
                return Err(e);
            }
        }
        let result = write.await;
        if result.is_err() {
            self.record_failure(&access).await;
        }
        result
    }
}

#[async_trait]
impl StoreLayer for AuditedStore {
    fn inner(&self) -> &dyn RecordStore {
        &*self.inner
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities().with(Capability::AccessAudit)
    }

    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        if !entity.is_sensitive() {
            return self.inner.insert(ctx, entity, record).await;
        }
        let access = Access::new(ctx, entity, op::CREATE).of_records(&self.policy, [&record]);
        let prepared = self.creating(entity, std::slice::from_ref(&record));
        self.write(
            access,
            async { Ok(prepared) },
            self.inner.insert(ctx, entity, record),
        )
        .await
    }

    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        if !entity.is_sensitive() {
            return self.inner.insert_many(ctx, entity, records).await;
        }
        let access = Access::new(ctx, entity, op::CREATE_MANY).of_records(&self.policy, &records);
        let prepared = self.creating(entity, &records);
        self.write(
            access,
            async { Ok(prepared) },
            self.inner.insert_many(ctx, entity, records),
        )
        .await
    }

    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        if !entity.is_sensitive() {
            return self.inner.fetch(ctx, entity, id).await;
        }
        let access = Access::new(ctx, entity, op::GET).of_id(id);
        if ctx.patient().is_none() || entity.field(PATIENT_FIELD).is_some() {
            // The entry names the patient the record does, or says the read was refused
            // because the record is another patient's: either way it waits for the record, so
            // each read leaves exactly one entry.
            return self
                .read(
                    access,
                    self.inner.fetch(ctx, entity, id),
                    |a, found| match found {
                        Some(record) => a.of_records(&self.policy, [record]),
                        None => a,
                    },
                )
                .await;
        }
        self.admit(&access).await?;
        // Everything the entry holds is known before the read, so the entry is made durable
        // while the record is read; it is returned only once both are done.
        let access = Access {
            fields: sensitive_fields(entity),
            ..access
        };
        let (found, recorded) = tokio::join!(
            self.inner.fetch(ctx, entity, id),
            self.writer.append(access.entry(AccessOutcome::Allowed))
        );
        recorded?;
        match found {
            Ok(found) => Ok(found),
            Err(e) => {
                self.record_failure(&access).await;
                Err(e)
            }
        }
    }

    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        if !entity.is_sensitive() {
            return self.inner.update(ctx, entity, id, changes).await;
        }
        let mut access = Access::new(ctx, entity, op::UPDATE).of_id(id);
        access.fields = changes.sets.iter().map(|(name, _)| *name).collect();
        let phi: Vec<&'static str> = phi_fields(entity)
            .filter(|f| changes.sets.iter().any(|(name, _)| name == f))
            .collect();
        let prepared = self.changing(ctx, entity, id, !phi.is_empty(), |now| {
            changes
                .sets
                .iter()
                .filter(|(name, _)| phi.contains(name))
                .map(|(name, after)| FieldChange {
                    record_id: id.clone(),
                    field: name,
                    before: now.get(name).cloned().unwrap_or(Value::Null),
                    after: after.clone(),
                })
                .collect()
        });
        self.write(
            access,
            prepared,
            self.inner.update(ctx, entity, id, changes),
        )
        .await
    }

    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        if !entity.is_sensitive() {
            return self.inner.delete(ctx, entity, id).await;
        }
        let access = Access::new(ctx, entity, op::DELETE).of_id(id);
        // Deleting a PHI-bearing record removes its PHI values.
        let prepared = self.changing(ctx, entity, id, true, |now| {
            whole_records(entity, [now], false)
        });
        self.write(access, prepared, self.inner.delete(ctx, entity, id))
            .await
    }

    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        if !entity.is_sensitive() {
            return self.inner.list(ctx, entity, query).await;
        }
        let access = Access::new(ctx, entity, op::LIST);
        self.read(access, self.inner.list(ctx, entity, query), |a, records| {
            a.of_records(&self.policy, records)
        })
        .await
    }

    async fn count(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        if !entity.is_sensitive() {
            return self.inner.count(ctx, entity, filter).await;
        }
        let access = Access::new(ctx, entity, op::COUNT);
        self.read(access, self.inner.count(ctx, entity, filter), |a, _| a)
            .await
    }

    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        if !entity.is_sensitive() {
            return self.inner.exists(ctx, entity, id).await;
        }
        let access = Access::new(ctx, entity, op::EXISTS).of_id(id);
        self.read(access, self.inner.exists(ctx, entity, id), |a, _| a)
            .await
    }

    async fn insert_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        if !entity.is_sensitive() {
            return self.inner.insert_with_ttl(ctx, entity, record, ttl).await;
        }
        let access =
            Access::new(ctx, entity, op::CREATE_WITH_TTL).of_records(&self.policy, [&record]);
        let prepared = self.creating(entity, std::slice::from_ref(&record));
        self.write(
            access,
            async { Ok(prepared) },
            self.inner.insert_with_ttl(ctx, entity, record, ttl),
        )
        .await
    }

    async fn nearest(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        vector_field: &'static str,
        vector: &[f32],
        k: usize,
        prefilter: &Filter,
    ) -> Result<Vec<(Record, f32)>> {
        let search = self
            .inner
            .nearest(ctx, entity, vector_field, vector, k, prefilter);
        if !entity.is_sensitive() {
            return search.await;
        }
        let access = Access::new(ctx, entity, op::NEAREST);
        self.read(access, search, |a, found| {
            a.of_records(&self.policy, found.iter().map(|(r, _)| r))
        })
        .await
    }
}
