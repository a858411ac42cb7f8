//! The redaction ledger: for each emitted event, what was done to which field, never a
//! value. Entries are sealed with a keyed hash (the blind-index key) over their content, so
//! an edited entry shows; the table is append-only and month-partitioned. Reading it is for
//! auditors and administrators, and every read, allowed or not, is in the PHI access log.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike as _, SecondsFormat, Utc};
use serde_json::Value as Json;
use udl_core::{AccessContext, BlindIndexRule, Error, ErrorKind, Result, Role};
use udl_postgres::models::AccessOutcome;
use udl_postgres::PgStore;
use udl_privacy::audit::{new_entry, AuditWriter};
use udl_privacy::FieldKeys;

use crate::event::{ChangeEvent, Redaction};

const TABLE: &str = "udl_redaction_ledger";
/// Statements a large batch is split into, run at once.
const PARALLEL_STATEMENTS: usize = 4;
/// Fewest rows worth a statement of their own.
const MIN_ROWS_PER_STATEMENT: usize = 250;

/// One ledger entry as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerRecord {
    /// Event id.
    pub event_id: String,
    /// Event time (commit time).
    pub event_time: DateTime<Utc>,
    /// Event type.
    pub event_type: String,
    /// Event subject.
    pub subject: Option<String>,
    /// What was done to which field: `[{field, action, reason | token, key_version}]`.
    pub actions: Json,
    /// Whether the seal matches the content.
    pub intact: bool,
}

/// Writes and reads the ledger.
pub struct Ledger {
    pg: PgStore,
    keys: Arc<FieldKeys>,
    /// Months whose partition this process has made sure of.
    months: Mutex<HashSet<(i32, u32)>>,
}

fn canonical(
    event_id: &str,
    time: DateTime<Utc>,
    event_type: &str,
    subject: Option<&str>,
    actions: &str,
) -> String {
    format!(
        "{event_id}\n{}\n{event_type}\n{}\n{actions}",
        time.to_rfc3339_opts(SecondsFormat::Micros, true),
        subject.unwrap_or("")
    )
}

impl Ledger {
    /// The ledger in `pg`, sealed with `keys`.
    pub fn new(pg: PgStore, keys: Arc<FieldKeys>) -> Self {
        Ledger {
            pg,
            keys,
            months: Mutex::new(HashSet::new()),
        }
    }

    fn seal(&self, text: &str) -> Vec<u8> {
        self.keys
            .index
            .of(TABLE, "seal", text, BlindIndexRule::Exact)
            .to_vec()
    }

    async fn ensure_partitions(&self, times: impl Iterator<Item = DateTime<Utc>>) -> Result<()> {
        let missing: Vec<(i32, u32)> = {
            let known = self.months.lock().unwrap_or_else(|p| p.into_inner());
            let mut missing: Vec<(i32, u32)> = times
                .map(|t| (t.year(), t.month()))
                .filter(|m| !known.contains(m))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        for (year, month) in missing {
            let day = chrono::NaiveDate::from_ymd_opt(year, month, 1).expect("a month's first day");
            sqlx::query("SELECT udl_redaction_ledger_partition($1)")
                .bind(day)
                .execute(self.pg.pool())
                .await
                .map_err(|e| udl_postgres::classify(&e, "ledger.partition"))?;
            self.months
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((year, month));
        }
        Ok(())
    }

    /// Records what was done to each event's fields; an entry already recorded (a replay) is
    /// kept as it was. A large batch goes as a few statements on connections of their own at
    /// once (the ledger is what bounds the relay's rate, and its rows have no order).
    pub async fn record(&self, events: &[(&ChangeEvent, &[Redaction])]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.ensure_partitions(events.iter().map(|(e, _)| e.time))
            .await?;
        let per_statement = events
            .len()
            .div_ceil(PARALLEL_STATEMENTS)
            .max(MIN_ROWS_PER_STATEMENT);
        let statements = events.chunks(per_statement).map(|chunk| self.insert(chunk));
        futures_util::future::try_join_all(statements).await?;
        Ok(())
    }

    /// One statement recording `events`.
    async fn insert(&self, events: &[(&ChangeEvent, &[Redaction])]) -> Result<()> {
        let n = events.len();
        let (mut ids, mut times, mut types) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut subjects, mut actions, mut seals) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (event, redactions) in events {
            let done = sorted_json(&Json::Array(
                redactions.iter().map(Redaction::to_json).collect(),
            ));
            let event_type = event.event_type();
            seals.push(self.seal(&canonical(
                &event.id,
                event.time,
                &event_type,
                event.subject.as_deref(),
                &done,
            )));
            ids.push(event.id.as_str());
            times.push(event.time);
            types.push(event_type);
            subjects.push(event.subject.as_deref());
            actions.push(done);
        }
        sqlx::query(
            "INSERT INTO udl_redaction_ledger (event_id, event_time, event_type, subject, actions, seal)
             SELECT i, t, y, s, a::jsonb, z
             FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bytea[])
                  AS u(i, t, y, s, a, z)
             ON CONFLICT DO NOTHING",
        )
        .bind(ids)
        .bind(times)
        .bind(types)
        .bind(subjects)
        .bind(actions)
        .bind(seals)
        .execute(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "ledger.record"))?;
        Ok(())
    }

    /// The entries of event `event_id`, for an auditor or administrator; the read is
    /// recorded in the PHI access log (before anything is returned), a refusal too.
    pub async fn read(
        &self,
        ctx: &AccessContext,
        audit: &AuditWriter,
        event_id: &str,
    ) -> Result<Vec<LedgerRecord>> {
        let allowed = matches!(ctx.role(), Role::Auditor | Role::Admin);
        let outcome = if allowed {
            AccessOutcome::Allowed
        } else {
            AccessOutcome::Denied
        };
        let mut entry = new_entry(ctx, TABLE, "read", outcome);
        entry.record_ids = serde_json::json!([event_id]);
        audit.append(entry).await?;
        if !allowed {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "role {} may not read the redaction ledger (auditors and administrators may)",
                    ctx.role().as_str()
                ),
            ));
        }
        type Row = (String, DateTime<Utc>, String, Option<String>, Json, Vec<u8>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT event_id, event_time, event_type, subject, actions, seal
             FROM udl_redaction_ledger WHERE event_id = $1 ORDER BY event_time",
        )
        .bind(event_id)
        .fetch_all(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "ledger.read"))?;
        Ok(rows
            .into_iter()
            .map(
                |(event_id, event_time, event_type, subject, actions, seal)| {
                    let text = canonical(
                        &event_id,
                        event_time,
                        &event_type,
                        subject.as_deref(),
                        &sorted_json(&actions),
                    );
                    let intact = same_seal(&self.seal(&text), &seal);
                    LedgerRecord {
                        event_id,
                        event_time,
                        event_type,
                        subject,
                        actions,
                        intact,
                    }
                },
            )
            .collect())
    }
}

/// JSON text with every object's keys in order, whatever order PostgreSQL's `jsonb` gives
/// them back in: what the seal covers.
fn sorted_json(value: &Json) -> String {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Json::from(k.as_str()), sorted_json(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(sorted_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Compares two seals in time independent of where they differ.
fn same_seal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_does_not_depend_on_key_order() {
        let a: Json = serde_json::from_str(r#"[{"b":1,"a":{"y":null,"x":"t"}}]"#).unwrap();
        let b: Json = serde_json::from_str(r#"[{"a":{"x":"t","y":null},"b":1}]"#).unwrap();
        assert_eq!(sorted_json(&a), sorted_json(&b));
        assert_eq!(sorted_json(&a), r#"[{"a":{"x":"t","y":null},"b":1}]"#);
        assert!(
            same_seal(&[1, 2], &[1, 2])
                && !same_seal(&[1, 2], &[1, 3])
                && !same_seal(&[1], &[1, 2])
        );
    }
}
