//! PHI change history: every change to a PHI field, on any store, keeps an entry in PostgreSQL
//! (`phi_change_history`) with who made it, when, why, and the value before and after, both
//! encrypted and bound to the entry, so the history holds no PHI in the clear either. The audit
//! layer records a change before sending it; should the change then fail, the access log's
//! `error` entry for the same request says so. Reading the history back is a PHI access like any
//! other: put to the access policy and audited.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use udl_core::{
    AccessContext, EntityMeta, Error, ErrorKind, Record, Result, Sensitivity, StoreKind, Value,
};
use udl_postgres::PgStore;
use uuid::Uuid;

use crate::audit::{new_entry, AuditWriter};
use crate::cipher::FieldPlace;
use crate::field_keys::FieldKeys;
use crate::plain::{self, id_text};
use crate::policy::{denied, ConsentPolicy, Decision};
use udl_postgres::models::AccessOutcome;

const TABLE: &str = "phi_change_history";

/// One field of one record changing.
pub struct FieldChange {
    /// The record's id.
    pub record_id: Value,
    /// The field.
    pub field: &'static str,
    /// Its value before (null when the record is new).
    pub before: Value,
    /// Its value after (null when the record is deleted).
    pub after: Value,
}

/// A change as read back, its values decrypted. Deliberately without `Debug`: it holds PHI.
pub struct Change {
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub actor_id: String,
    /// Their role.
    pub actor_role: String,
    /// Why.
    pub purpose: String,
    /// The request it was part of.
    pub request_id: String,
    /// insert, update or delete.
    pub operation: String,
    /// The field.
    pub field: String,
    /// The value before.
    pub before: Value,
    /// The value after.
    pub after: Value,
}

/// Writes and reads the PHI change history.
pub struct ChangeHistory {
    pg: PgStore,
    keys: Arc<FieldKeys>,
    /// Who may read the history back, and where reading it is recorded.
    guard: Option<(Arc<AuditWriter>, Arc<ConsentPolicy>)>,
    /// The months whose partition this process has made sure of.
    months: Mutex<HashSet<NaiveDate>>,
    /// How long changes are kept: reads leave out older ones, even before their month is
    /// dropped.
    kept: Option<std::time::Duration>,
}

/// The PHI fields of `entity`.
pub(crate) fn phi_fields(entity: &'static EntityMeta) -> impl Iterator<Item = &'static str> {
    entity
        .fields
        .iter()
        .filter(|f| f.sensitivity == Sensitivity::Phi)
        .map(|f| f.name)
}

/// Changes from nothing to each PHI value of `records` (`insert`), or from each to nothing.
pub(crate) fn whole_records<'r>(
    entity: &'static EntityMeta,
    records: impl IntoIterator<Item = &'r Record>,
    created: bool,
) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    for record in records {
        let Some(id) = record.get(entity.id_field) else {
            continue;
        };
        for field in phi_fields(entity) {
            let value = record.get(field).cloned().unwrap_or(Value::Null);
            if value.is_null() {
                continue;
            }
            let (before, after) = if created {
                (Value::Null, value)
            } else {
                (value, Value::Null)
            };
            changes.push(FieldChange {
                record_id: id.clone(),
                field,
                before,
                after,
            });
        }
    }
    changes
}

fn slot(field: &str, which: &str) -> String {
    format!("{field}.{which}")
}

impl ChangeHistory {
    /// History kept in `pg`, its values encrypted with `keys`.
    pub fn new(pg: PgStore, keys: Arc<FieldKeys>) -> Self {
        ChangeHistory {
            pg,
            keys,
            guard: None,
            months: Mutex::default(),
            kept: None,
        }
    }

    /// The same history, its reads put to `policy` and recorded by `audit`.
    pub fn guarded(mut self, audit: Arc<AuditWriter>, policy: Arc<ConsentPolicy>) -> Self {
        self.guard = Some((audit, policy));
        self
    }

    fn seal(
        &self,
        entry: Uuid,
        field: &str,
        which: &str,
        value: &Value,
    ) -> Result<Option<Vec<u8>>> {
        if value.is_null() {
            return Ok(None);
        }
        let slot = slot(field, which);
        let place = FieldPlace {
            store: StoreKind::POSTGRES.name(),
            table: TABLE,
            field: &slot,
            record_id: entry.as_bytes(),
        };
        self.keys
            .cipher()
            .encrypt(&place, &plain::to_bytes(value)?)
            .map(Some)
    }

    /// The same history, its reads leaving out changes older than `kept`.
    pub fn keeping(mut self, kept: std::time::Duration) -> Self {
        self.kept = Some(kept);
        self
    }

    /// Makes sure the month of `now` has its partition (once per month per process).
    async fn ensure_partition(&self, now: DateTime<Utc>) -> Result<()> {
        let month = now.date_naive().with_day(1).unwrap_or(now.date_naive());
        if self.months.lock().is_ok_and(|m| m.contains(&month)) {
            return Ok(());
        }
        sqlx::query("SELECT udl_change_history_partition($1)")
            .bind(month)
            .execute(self.pg.pool())
            .await
            .map_err(|e| udl_postgres::classify(&e, "change history"))?;
        if let Ok(mut months) = self.months.lock() {
            months.insert(month);
        }
        Ok(())
    }

    /// Records `changes`, made by `ctx` through `operation` on `entity` in `store`.
    pub async fn record(
        &self,
        ctx: &AccessContext,
        store: StoreKind,
        entity: &'static EntityMeta,
        operation: &'static str,
        changes: Vec<FieldChange>,
    ) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        self.ensure_partition(now).await?;
        let (mut ids, mut record_ids, mut fields, mut befores, mut afters) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for change in &changes {
            let id = Uuid::new_v4();
            befores.push(self.seal(id, change.field, "before", &change.before)?);
            afters.push(self.seal(id, change.field, "after", &change.after)?);
            ids.push(id);
            record_ids.push(id_text(&change.record_id));
            fields.push(change.field);
        }
        sqlx::query(
            "INSERT INTO phi_change_history (id, occurred_at, actor_id, actor_role, purpose,
                 request_id, store, entity, record_id, field, operation, before, after,
                 patient_id)
             SELECT id, $2, $3, $4, $5, $6, $7, $8, record_id, field, $9, before, after, $14
             FROM unnest($1::uuid[], $10::text[], $11::text[], $12::bytea[], $13::bytea[])
                  AS c(id, record_id, field, before, after)",
        )
        .bind(&ids)
        .bind(now)
        .bind(ctx.actor())
        .bind(ctx.role().as_str())
        .bind(ctx.purpose().as_str())
        .bind(ctx.request_id())
        .bind(store.name())
        .bind(entity.name)
        .bind(operation)
        .bind(&record_ids)
        .bind(&fields)
        .bind(&befores)
        .bind(&afters)
        .bind(ctx.patient())
        .execute(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "change history"))?;
        Ok(())
    }

    /// The changes to the PHI fields of `entity`'s record `record_id`, oldest first, for `ctx`:
    /// with a guard, only when the access policy allows it, and once the read is audited.
    pub async fn of(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        record_id: &Value,
    ) -> Result<Vec<Change>> {
        let mut entry = new_entry(ctx, entity.name, "history", AccessOutcome::Allowed);
        entry.record_ids = serde_json::json!([id_text(record_id)]);
        entry.patient_id = ctx.patient().map(str::to_owned);
        entry.fields = phi_fields(entity).collect::<Vec<_>>().into();
        if let Some((audit, policy)) = &self.guard {
            if let Decision::Denied(reason) = policy.decide(ctx, entity).await? {
                entry.outcome = AccessOutcome::Denied;
                audit.append(entry).await?;
                return Err(denied(entity, reason));
            }
        }
        let changes = self.read(entity, record_id).await?;
        if let Some((audit, _)) = &self.guard {
            audit.append(entry).await?;
        }
        Ok(changes)
    }

    /// The oldest change still kept, now.
    fn kept_since(&self) -> Option<DateTime<Utc>> {
        let kept = chrono::Duration::from_std(self.kept?).ok()?;
        Utc::now().checked_sub_signed(kept)
    }

    async fn read(&self, entity: &'static EntityMeta, record_id: &Value) -> Result<Vec<Change>> {
        type Row = (
            Uuid,
            DateTime<Utc>,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, occurred_at, actor_id, actor_role, purpose, request_id, operation, field,
                    before, after
             FROM phi_change_history WHERE entity = $1 AND record_id = $2
               AND ($3::timestamptz IS NULL OR occurred_at >= $3)
             ORDER BY occurred_at",
        )
        .bind(entity.name)
        .bind(id_text(record_id))
        .bind(self.kept_since())
        .fetch_all(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "change history"))?;
        rows.into_iter()
            .map(|row| {
                let kind = entity
                    .field(&row.7)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::DataCorruption,
                            format!("change history names a field {} does not have", entity.name),
                        )
                    })?
                    .kind;
                let open = |which: &str, sealed: Option<Vec<u8>>| -> Result<Value> {
                    let Some(sealed) = sealed else {
                        return Ok(Value::Null);
                    };
                    let slot = slot(&row.7, which);
                    let place = FieldPlace {
                        store: StoreKind::POSTGRES.name(),
                        table: TABLE,
                        field: &slot,
                        record_id: row.0.as_bytes(),
                    };
                    plain::from_bytes(kind, self.keys.cipher().decrypt(&place, &sealed)?)
                };
                Ok(Change {
                    before: open("before", row.8)?,
                    after: open("after", row.9)?,
                    occurred_at: row.1,
                    actor_id: row.2,
                    actor_role: row.3,
                    purpose: row.4,
                    request_id: row.5,
                    operation: row.6,
                    field: row.7,
                })
            })
            .collect()
    }
}
