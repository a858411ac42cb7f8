//! The redaction ledger: for each emitted event, what was done to which field, never a
//! value. A row holds a transaction's entries and is sealed with a keyed hash (the
//! blind-index key) over its content, so an edited entry shows; the table is append-only and
//! month-partitioned. Reading it is for auditors and administrators, and every read, allowed or
//! not, is in the PHI access log.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike as _, SecondsFormat, Utc};
use serde_json::Value as Json;
use udl_core::{AccessContext, BlindIndexRule, Error, ErrorKind, Result, Role};
use udl_postgres::models::AccessOutcome;
use udl_postgres::PgStore;
use udl_privacy::audit::{new_entry, AuditWriter};
use udl_privacy::FieldKeys;

use crate::event::{ChangeEvent, Redaction};

const TABLE: &str = "udl_redaction_ledger";
/// Most events one row holds; a longer transaction takes several rows.
const EVENTS_PER_ROW: usize = 1000;
/// Statements a large batch is split into, run at once.
const PARALLEL_STATEMENTS: usize = 4;
/// Fewest events worth a statement of their own.
const MIN_EVENTS_PER_STATEMENT: usize = 2000;

/// One event's ledger entry as read back.
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
    /// Whether the seal of the row holding the entry matches its content.
    pub intact: bool,
}

/// Writes and reads the ledger.
pub struct Ledger {
    pg: PgStore,
    keys: Arc<FieldKeys>,
    /// Months whose partition this process has made sure of.
    months: tokio::sync::Mutex<HashSet<(i32, u32)>>,
}

/// One event's entry as written: keys in order, so the text is what [`sorted_json`] gives back
/// from the stored `jsonb` (the seal covers it).
#[derive(serde::Serialize)]
struct StoredEntry<'a> {
    actions: &'a [Redaction],
    ordinal: u32,
    subject: Option<&'a str>,
    #[serde(rename = "type")]
    event_type: String,
}

/// One ledger row: consecutive events of one transaction.
struct Row {
    position: i64,
    first: i32,
    last: i32,
    time: DateTime<Utc>,
    /// `[{ordinal, type, subject, actions}]`, keys in order: what the seal covers.
    entries: String,
}

fn canonical(position: i64, first: i32, last: i32, time: DateTime<Utc>, entries: &str) -> String {
    format!(
        "{position}\n{first}\n{last}\n{}\n{entries}",
        time.to_rfc3339_opts(SecondsFormat::Micros, true),
    )
}

fn ordinal_of(ordinal: u32) -> Result<i32> {
    i32::try_from(ordinal)
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "an event ordinal out of range"))
}

/// Groups events into rows: a run of one transaction's events, at most [`EVENTS_PER_ROW`].
fn rows(events: &[(&ChangeEvent, &[Redaction])]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut rest = events;
    while let Some((head, _)) = rest.first() {
        let run = rest
            .iter()
            .take(EVENTS_PER_ROW)
            .take_while(|(e, _)| e.position == head.position && e.time == head.time)
            .count();
        let (these, after) = rest.split_at(run);
        rest = after;
        let mut entries = Vec::with_capacity(these.len() * 256);
        entries.push(b'[');
        for (n, (event, redactions)) in these.iter().enumerate() {
            if n > 0 {
                entries.push(b',');
            }
            let entry = StoredEntry {
                actions: redactions,
                ordinal: event.ordinal,
                subject: event.subject.as_deref(),
                event_type: event.event_type(),
            };
            serde_json::to_writer(&mut entries, &entry).map_err(|_| {
                Error::new(ErrorKind::Internal, "a ledger entry could not be written")
            })?;
        }
        entries.push(b']');
        rows.push(Row {
            position: i64::try_from(head.position).map_err(|_| {
                Error::new(ErrorKind::InvalidInput, "a commit position out of range")
            })?,
            first: ordinal_of(head.ordinal)?,
            last: ordinal_of(these[run - 1].0.ordinal)?,
            time: head.time,
            entries: String::from_utf8(entries).expect("JSON is UTF-8"),
        });
    }
    Ok(rows)
}

/// The commit position and ordinal an event id names, if it is one.
fn place_of(event_id: &str) -> Option<(i64, i32)> {
    let (position, ordinal) = event_id.split_once('-')?;
    let position = u64::from_str_radix(position, 16).ok()?;
    Some((i64::try_from(position).ok()?, ordinal.parse().ok()?))
}

impl Ledger {
    /// The ledger in `pg`, sealed with `keys`.
    pub fn new(pg: PgStore, keys: Arc<FieldKeys>) -> Self {
        Ledger {
            pg,
            keys,
            months: tokio::sync::Mutex::new(HashSet::new()),
        }
    }

    fn seal(&self, text: &str) -> Vec<u8> {
        self.keys
            .index
            .of(TABLE, "seal", text, BlindIndexRule::Exact)
            .to_vec()
    }

    /// Makes sure of the month partitions of `times`; one batch at a time, as batches in
    /// flight together may both be the first of a month.
    async fn ensure_partitions(&self, times: impl Iterator<Item = DateTime<Utc>>) -> Result<()> {
        let mut known = self.months.lock().await;
        let mut missing: Vec<(i32, u32)> = times
            .map(|t| (t.year(), t.month()))
            .filter(|m| !known.contains(m))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        for (year, month) in missing {
            let day = chrono::NaiveDate::from_ymd_opt(year, month, 1).expect("a month's first day");
            sqlx::query("SELECT udl_redaction_ledger_partition($1)")
                .bind(day)
                .execute(self.pg.pool())
                .await
                .map_err(|e| udl_postgres::classify(&e, "ledger.partition"))?;
            known.insert((year, month));
        }
        Ok(())
    }

    /// Records what was done to each event's fields, a row per transaction (events of one
    /// transaction come together, in order); a row already recorded (a replay) is kept as it
    /// was. A large batch goes as a few statements on connections of their own at once.
    pub async fn record(&self, events: &[(&ChangeEvent, &[Redaction])]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = rows(events)?;
        self.ensure_partitions(rows.iter().map(|r| r.time)).await?;
        let per_statement = events
            .len()
            .div_ceil(PARALLEL_STATEMENTS)
            .max(MIN_EVENTS_PER_STATEMENT);
        let mut statements = Vec::new();
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let mut size = 0;
            let take = rest
                .iter()
                .take_while(|r| {
                    let fits = size < per_statement;
                    size += (r.last - r.first + 1) as usize;
                    fits
                })
                .count();
            let (these, after) = rest.split_at(take);
            statements.push(self.insert(these));
            rest = after;
        }
        futures_util::future::try_join_all(statements).await?;
        Ok(())
    }

    /// One statement recording `rows`.
    async fn insert(&self, rows: &[Row]) -> Result<()> {
        let seals: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| self.seal(&canonical(r.position, r.first, r.last, r.time, &r.entries)))
            .collect();
        sqlx::query(
            "INSERT INTO udl_redaction_ledger
                 (commit_position, first_ordinal, last_ordinal, commit_time, entries, seal)
             SELECT p, f, l, t, e::jsonb, z
             FROM UNNEST($1::bigint[], $2::int[], $3::int[], $4::timestamptz[], $5::text[], $6::bytea[])
                  AS u(p, f, l, t, e, z)
             ON CONFLICT DO NOTHING",
        )
        .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.first).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.last).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.time).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.entries.as_str()).collect::<Vec<_>>())
        .bind(seals)
        .execute(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "ledger.record"))?;
        Ok(())
    }

    /// The entry of event `event_id` (one, unless a replay recorded it twice alike), for an
    /// auditor or administrator; the read is recorded in the PHI access log (before anything
    /// is returned), a refusal too.
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
        let Some((position, ordinal)) = place_of(event_id) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an event id is <commit position, 16 hex digits>-<ordinal>",
            ));
        };
        type Stored = (i32, i32, DateTime<Utc>, Json, Vec<u8>);
        let stored: Vec<Stored> = sqlx::query_as(
            "SELECT first_ordinal, last_ordinal, commit_time, entries, seal
             FROM udl_redaction_ledger
             WHERE commit_position = $1 AND first_ordinal <= $2 AND last_ordinal >= $2
             ORDER BY commit_time, first_ordinal",
        )
        .bind(position)
        .bind(ordinal)
        .fetch_all(self.pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "ledger.read"))?;
        Ok(stored
            .into_iter()
            .filter_map(|(first, last, time, entries, seal)| {
                let text = canonical(position, first, last, time, &sorted_json(&entries));
                let intact = same_seal(&self.seal(&text), &seal);
                let entry = entries
                    .as_array()?
                    .iter()
                    .find(|e| e["ordinal"].as_i64() == Some(i64::from(ordinal)))?;
                Some(LedgerRecord {
                    event_id: event_id.to_owned(),
                    event_time: time,
                    event_type: entry["type"].as_str().unwrap_or_default().to_owned(),
                    subject: entry["subject"].as_str().map(str::to_owned),
                    actions: entry["actions"].clone(),
                    intact,
                })
            })
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
    use crate::event::{event_id, ChangeKind};

    fn event(position: u64, ordinal: u32) -> ChangeEvent {
        ChangeEvent {
            id: event_id(position, ordinal),
            entity: "sessions",
            kind: ChangeKind::Created,
            source: "udl/postgres/udl/public".into(),
            subject: Some("fake-subject".into()),
            time: "2026-01-02T03:04:05Z".parse().unwrap(),
            position,
            ordinal,
            data: serde_json::Map::new(),
        }
    }

    #[test]
    fn a_row_holds_one_transaction_and_at_most_a_thousand_events() {
        let events: Vec<ChangeEvent> = (0..2500)
            .map(|o| event(7, o))
            .chain((0..3).map(|o| event(9, o)))
            .collect();
        let stripped = [
            Redaction::Stripped {
                field: "notes",
                reason: "sensitive",
                key_version: Some(2),
            },
            Redaction::Tokenized {
                field: "patient_ref",
                token: None,
                key_version: None,
            },
        ];
        let pairs: Vec<(&ChangeEvent, &[Redaction])> =
            events.iter().map(|e| (e, &stripped[..])).collect();
        let rows = rows(&pairs).unwrap();
        let spans: Vec<(i64, i32, i32)> =
            rows.iter().map(|r| (r.position, r.first, r.last)).collect();
        assert_eq!(
            spans,
            [(7, 0, 999), (7, 1000, 1999), (7, 2000, 2499), (9, 0, 2)]
        );
        let entries: Json = serde_json::from_str(&rows[3].entries).unwrap();
        assert_eq!(
            sorted_json(&entries),
            rows[3].entries,
            "what the seal covers on reading"
        );
        assert_eq!(entries[2]["ordinal"], 2);
        assert_eq!(entries[2]["type"], "ce.sessions.created");
        assert_eq!(entries[2]["actions"][0]["action"], "stripped");
    }

    #[test]
    fn an_event_id_names_its_row() {
        assert_eq!(place_of(&event_id(0xA7FEDC8, 12)), Some((0xA7FEDC8, 12)));
        assert_eq!(place_of("not-an-id"), None);
        assert_eq!(place_of("FFFFFFFFFFFFFFFF-00000"), None, "beyond a BIGINT");
    }

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
