//! [`AuditedStore`]: every operation on a PHI-bearing entity leaves exactly one entry in the
//! PHI access log — who, why, what, whose, when, and how it ended. Reads fail closed: data is
//! returned only after its entry is durable. Writes are recorded before they are sent, so no PHI
//! is written unaudited; a write that then fails adds an `error` entry. Put this layer above the
//! cache, so cache hits are audited like any other read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use udl_core::{
    AccessContext, Capabilities, EntityMeta, Filter, Query, Record, RecordStore, Result,
    Sensitivity, StoreKind, ValidChanges, Value,
};
use udl_postgres::models::{AccessOutcome, PhiAccessLogEntry};

use super::writer::AuditWriter;

/// Records every access to PHI-bearing entities in `inner` through an [`AuditWriter`].
pub struct AuditedStore {
    inner: Arc<dyn RecordStore>,
    writer: Arc<AuditWriter>,
}

/// What one operation touched.
struct Access<'a> {
    ctx: &'a AccessContext,
    entity: &'static EntityMeta,
    operation: &'static str,
    record_ids: Vec<serde_json::Value>,
    fields: Vec<&'static str>,
    patient: Option<String>,
}

/// The field that names a record's patient, by the platform's convention.
const PATIENT_FIELD: &str = "patient_id";

fn id_json(id: &Value) -> serde_json::Value {
    match id {
        Value::Uuid(u) => u.to_string().into(),
        Value::Text(t) => t.clone().into(),
        Value::Int(i) => (*i).into(),
        _ => "<id>".into(),
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
fn patient_of<'r>(records: impl IntoIterator<Item = &'r Record>) -> Option<String> {
    let mut patient: Option<String> = None;
    for record in records {
        let this = match record.get(PATIENT_FIELD)? {
            Value::Text(t) => t.clone(),
            Value::Uuid(u) => u.to_string(),
            _ => return None,
        };
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
        }
    }

    fn of_id(mut self, id: &Value) -> Self {
        self.record_ids.push(id_json(id));
        self
    }

    /// The records read or written: their ids, the sensitive fields they disclose, and their
    /// patient when the context does not name one.
    fn of_records<'r>(mut self, records: impl IntoIterator<Item = &'r Record> + Clone) -> Self {
        let id_field = self.entity.id_field;
        self.record_ids = records
            .clone()
            .into_iter()
            .filter_map(|r| r.get(id_field).map(id_json))
            .collect();
        if !self.record_ids.is_empty() {
            self.fields = sensitive_fields(self.entity);
        }
        if self.patient.is_none() {
            self.patient = patient_of(records);
        }
        self
    }

    fn entry(&self, outcome: AccessOutcome) -> PhiAccessLogEntry {
        PhiAccessLogEntry {
            seq: 0,
            id: uuid::Uuid::new_v4(),
            occurred_at: Utc::now(),
            actor_id: self.ctx.actor().to_owned(),
            actor_role: self.ctx.role(),
            purpose: self.ctx.purpose(),
            patient_id: self.patient.clone(),
            entity: self.entity.name.to_owned(),
            record_ids: self.record_ids.clone().into(),
            fields: self.fields.clone().into(),
            operation: self.operation.to_owned(),
            outcome,
            request_id: self.ctx.request_id().to_owned(),
            prev_hash: None,
            hash: Vec::new(),
        }
    }
}

impl AuditedStore {
    /// `inner` with its PHI accesses recorded by `writer`.
    pub fn new(inner: Arc<dyn RecordStore>, writer: Arc<AuditWriter>) -> Self {
        AuditedStore { inner, writer }
    }

    /// Records `access` and then hands back `result`: a read's data is returned only once its
    /// entry is durable, and a failed operation is recorded as `error` (best effort: its own
    /// error is what the caller needs).
    async fn after<T>(&self, access: Access<'_>, result: Result<T>) -> Result<T> {
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
        if let Err(audit) = self.writer.append(access.entry(AccessOutcome::Error)).await {
            tracing::error!(error = %audit, entity = access.entity.name, operation = access.operation,
                "a failed PHI access could not be recorded");
        }
    }

    /// Records a write before it is sent, then sends it; a failure adds an `error` entry.
    async fn write<T>(
        &self,
        access: Access<'_>,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.writer
            .append(access.entry(AccessOutcome::Allowed))
            .await?;
        let result = write.await;
        if result.is_err() {
            self.record_failure(&access).await;
        }
        result
    }
}

#[async_trait]
impl RecordStore for AuditedStore {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn insert(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        if !entity.has_phi() {
            return self.inner.insert(ctx, entity, record).await;
        }
        let access = Access::new(ctx, entity, "insert").of_records([&record]);
        self.write(access, self.inner.insert(ctx, entity, record))
            .await
    }

    async fn insert_many(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        if !entity.has_phi() {
            return self.inner.insert_many(ctx, entity, records).await;
        }
        let access = Access::new(ctx, entity, "insert_many").of_records(&records);
        self.write(access, self.inner.insert_many(ctx, entity, records))
            .await
    }

    async fn fetch(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        let result = self.inner.fetch(ctx, entity, id).await;
        if !entity.has_phi() {
            return result;
        }
        let access = match &result {
            Ok(Some(record)) => Access::new(ctx, entity, "get").of_records([record]),
            _ => Access::new(ctx, entity, "get").of_id(id),
        };
        self.after(access, result).await
    }

    async fn update(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        if !entity.has_phi() {
            return self.inner.update(ctx, entity, id, changes).await;
        }
        let mut access = Access::new(ctx, entity, "update").of_id(id);
        access.fields = changes.sets.iter().map(|(name, _)| *name).collect();
        self.write(access, self.inner.update(ctx, entity, id, changes))
            .await
    }

    async fn delete(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        if !entity.has_phi() {
            return self.inner.delete(ctx, entity, id).await;
        }
        let access = Access::new(ctx, entity, "delete").of_id(id);
        self.write(access, self.inner.delete(ctx, entity, id)).await
    }

    async fn list(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        let result = self.inner.list(ctx, entity, query).await;
        if !entity.has_phi() {
            return result;
        }
        let access = match &result {
            Ok(records) => Access::new(ctx, entity, "list").of_records(records),
            Err(_) => Access::new(ctx, entity, "list"),
        };
        self.after(access, result).await
    }

    async fn count(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        let result = self.inner.count(ctx, entity, filter).await;
        if !entity.has_phi() {
            return result;
        }
        self.after(Access::new(ctx, entity, "count"), result).await
    }

    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        let result = self.inner.exists(ctx, entity, id).await;
        if !entity.has_phi() {
            return result;
        }
        self.after(Access::new(ctx, entity, "exists").of_id(id), result)
            .await
    }

    async fn insert_with_ttl(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        if !entity.has_phi() {
            return self.inner.insert_with_ttl(ctx, entity, record, ttl).await;
        }
        let access = Access::new(ctx, entity, "insert_with_ttl").of_records([&record]);
        self.write(access, self.inner.insert_with_ttl(ctx, entity, record, ttl))
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
        let result = self
            .inner
            .nearest(ctx, entity, vector_field, vector, k, prefilter)
            .await;
        if !entity.has_phi() {
            return result;
        }
        let access = match &result {
            Ok(found) => {
                Access::new(ctx, entity, "nearest").of_records(found.iter().map(|(r, _)| r))
            }
            Err(_) => Access::new(ctx, entity, "nearest"),
        };
        self.after(access, result).await
    }
}
