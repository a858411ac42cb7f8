//! Compliance reports from the PHI access log: the accounting of disclosures for one patient
//! (every access to their data) and summaries of all accesses by actor, purpose and outcome,
//! each as JSON and as a readable HTML page (see `report_html`). Break-glass accesses (purpose
//! `emergency`) are flagged.

use chrono::{DateTime, Utc};
use serde::Serialize;
use udl_core::{AccessContext, Purpose, Result};
use udl_postgres::models::AccessOutcome;
use udl_postgres::PgStore;

use super::{new_entry, AuditWriter};

/// Entries read per page while building a report.
const PAGE: i64 = 5000;

/// One access to a patient's data.
#[derive(Clone, Debug, Serialize)]
pub struct Disclosure {
    /// Position in the audit chain.
    pub seq: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub actor_id: String,
    /// Their role.
    pub actor_role: String,
    /// Why.
    pub purpose: String,
    /// Whether it was an emergency (break-glass) access.
    pub break_glass: bool,
    /// What kind of record.
    pub entity: String,
    /// Which records.
    pub record_ids: serde_json::Value,
    /// Which fields.
    pub fields: serde_json::Value,
    /// The operation.
    pub operation: String,
    /// allowed, denied or error.
    pub outcome: String,
    /// The request it was part of.
    pub request_id: String,
}

/// Every access to one patient's data within a period.
#[derive(Clone, Debug, Serialize)]
pub struct Accounting {
    /// The patient.
    pub patient_id: String,
    /// Start of the period, if bounded.
    pub from: Option<DateTime<Utc>>,
    /// End of the period (exclusive), if bounded.
    pub to: Option<DateTime<Utc>>,
    /// The accesses, oldest first.
    pub disclosures: Vec<Disclosure>,
}

/// How many accesses one actor made for one purpose with one outcome.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SummaryRow {
    /// Who.
    pub actor_id: String,
    /// Their role.
    pub actor_role: String,
    /// Why.
    pub purpose: String,
    /// allowed, denied or error.
    pub outcome: String,
    /// How many accesses.
    pub accesses: i64,
    /// How many distinct patients they concerned.
    pub patients: i64,
}

/// Accesses within a period, grouped by actor, purpose and outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Start of the period, if bounded.
    pub from: Option<DateTime<Utc>>,
    /// End of the period (exclusive), if bounded.
    pub to: Option<DateTime<Utc>>,
    /// All accesses in the period.
    pub total: i64,
    /// Emergency (break-glass) accesses in the period.
    pub break_glass: i64,
    /// One row per actor, purpose and outcome, most accesses first.
    pub rows: Vec<SummaryRow>,
    /// Accesses per day (UTC) of the period, oldest first; days without any are left out.
    pub by_day: Vec<DayCount>,
    /// The local audit journals heard from in the last day or known to be behind: accesses
    /// they hold may not be in this report yet.
    pub journals: Vec<JournalLag>,
}

/// Accesses on one day (UTC), by outcome.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DayCount {
    /// The day.
    pub day: chrono::NaiveDate,
    /// Allowed accesses.
    pub allowed: i64,
    /// Denied or failed accesses.
    pub refused: i64,
}

/// How far one local audit journal is behind the log, as of the last batch it shipped.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JournalLag {
    /// The journal.
    pub journal_id: uuid::Uuid,
    /// The machine and directory holding it.
    pub host: String,
    /// Its directory there.
    pub path: String,
    /// Its entries in the log: the first `shipped_through`.
    pub shipped_through: i64,
    /// Its entries when it last shipped; more may have been written since.
    pub appended_through: i64,
    /// Entries it held that were not in the log when it last shipped.
    pub behind: i64,
    /// When it last shipped.
    pub last_shipped_at: DateTime<Utc>,
}

type DisclosureRow = (
    i64,
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    serde_json::Value,
    serde_json::Value,
    String,
    String,
    String,
);

fn classify(e: sqlx::Error) -> udl_core::Error {
    udl_postgres::classify(&e, "compliance report")
}

/// The accounting of disclosures for `patient` within `[from, to)`.
pub async fn accounting(
    pg: &PgStore,
    patient: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Accounting> {
    let mut disclosures = Vec::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<DisclosureRow> = sqlx::query_as(
            "SELECT seq, occurred_at, actor_id, actor_role, purpose, entity, record_ids, fields,
                    operation, outcome, request_id
             FROM phi_access_log
             WHERE patient_id = $1 AND seq > $2
               AND ($3::timestamptz IS NULL OR occurred_at >= $3)
               AND ($4::timestamptz IS NULL OR occurred_at < $4)
             ORDER BY seq LIMIT $5",
        )
        .bind(patient)
        .bind(after)
        .bind(from)
        .bind(to)
        .bind(PAGE)
        .fetch_all(pg.pool())
        .await
        .map_err(classify)?;
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            after = row.0;
            disclosures.push(Disclosure {
                seq: row.0,
                occurred_at: row.1,
                actor_id: row.2,
                actor_role: row.3,
                break_glass: row.4 == Purpose::Emergency.as_str(),
                purpose: row.4,
                entity: row.5,
                record_ids: row.6,
                fields: row.7,
                operation: row.8,
                outcome: row.9,
                request_id: row.10,
            });
        }
        if !full {
            break;
        }
    }
    Ok(Accounting {
        patient_id: patient.to_owned(),
        from,
        to,
        disclosures,
    })
}

/// Accesses within `[from, to)` by actor, purpose and outcome.
pub async fn summary(
    pg: &PgStore,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Summary> {
    let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT actor_id, actor_role, purpose, outcome, count(*), count(DISTINCT patient_id)
         FROM phi_access_log
         WHERE ($1::timestamptz IS NULL OR occurred_at >= $1)
           AND ($2::timestamptz IS NULL OR occurred_at < $2)
         GROUP BY actor_id, actor_role, purpose, outcome
         ORDER BY count(*) DESC, actor_id, purpose, outcome",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pg.pool())
    .await
    .map_err(classify)?;
    let rows: Vec<SummaryRow> = rows
        .into_iter()
        .map(|r| SummaryRow {
            actor_id: r.0,
            actor_role: r.1,
            purpose: r.2,
            outcome: r.3,
            accesses: r.4,
            patients: r.5,
        })
        .collect();
    let by_day: Vec<(chrono::NaiveDate, i64, i64)> = sqlx::query_as(
        "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day,
                count(*) FILTER (WHERE outcome = 'allowed'),
                count(*) FILTER (WHERE outcome <> 'allowed')
         FROM phi_access_log
         WHERE ($1::timestamptz IS NULL OR occurred_at >= $1)
           AND ($2::timestamptz IS NULL OR occurred_at < $2)
         GROUP BY day ORDER BY day",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pg.pool())
    .await
    .map_err(classify)?;
    let emergency = Purpose::Emergency.as_str();
    Ok(Summary {
        journals: journal_lags(pg).await?,
        by_day: by_day
            .into_iter()
            .map(|(day, allowed, refused)| DayCount {
                day,
                allowed,
                refused,
            })
            .collect(),
        from,
        to,
        total: rows.iter().map(|r| r.accesses).sum(),
        break_glass: rows
            .iter()
            .filter(|r| r.purpose == emergency)
            .map(|r| r.accesses)
            .sum(),
        rows,
    })
}

/// The journals a report mentions: heard from in the last day, or behind when last heard.
async fn journal_lags(pg: &PgStore) -> Result<Vec<JournalLag>> {
    let rows: Vec<(uuid::Uuid, String, String, i64, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT journal_id, host, path, shipped_through, appended_through, heard_at
         FROM phi_audit_journals
         WHERE heard_at > now() - INTERVAL '1 day' OR appended_through > shipped_through
         ORDER BY heard_at",
    )
    .fetch_all(pg.pool())
    .await
    .map_err(classify)?;
    Ok(rows
        .into_iter()
        .map(|r| JournalLag {
            journal_id: r.0,
            host: r.1,
            path: r.2,
            shipped_through: r.3,
            appended_through: r.4,
            behind: (r.4 - r.3).max(0),
            last_shipped_at: r.5,
        })
        .collect())
}

/// Records that `ctx` read a report from the log (about `patient`, when it is an accounting):
/// the log names patients, so reading it is a PHI access too. Call it after building the
/// report and before showing it.
pub async fn record_reading(
    audit: &AuditWriter,
    ctx: &AccessContext,
    patient: Option<&str>,
) -> Result<()> {
    let mut entry = new_entry(
        ctx,
        "phi_access_log",
        "compliance_report",
        AccessOutcome::Allowed,
    );
    entry.patient_id = patient.map(str::to_owned);
    audit.append(entry).await
}
