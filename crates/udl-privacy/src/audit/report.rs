//! Compliance reports from the PHI access log: the accounting of disclosures for one patient
//! (every access to their data) and summaries of all accesses by actor, purpose and outcome,
//! each as JSON and as a readable HTML page. Break-glass accesses (purpose `emergency`) are
//! flagged.

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
    /// The local audit journals heard from in the last day or known to be behind: accesses
    /// they hold may not be in this report yet.
    pub journals: Vec<JournalLag>,
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
    let emergency = Purpose::Emergency.as_str();
    Ok(Summary {
        journals: journal_lags(pg).await?,
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

/// `text` safe to place in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn period(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    let end = |t: Option<DateTime<Utc>>, open: &str| t.map_or(open.to_owned(), |t| t.to_rfc3339());
    format!("{} to {}", end(from, "the beginning"), end(to, "now"))
}

/// A page with `title`, a period line and one table whose rows are `(break-glass, cells)`:
/// break-glass rows are marked in a first column and highlighted.
fn page(title: &str, intro: &str, head: &[&str], rows: Vec<(bool, Vec<String>)>) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}\
         tr.flag{{background:#fdd}}</style></head><body>\n<h1>{title}</h1>\n<p>{intro}</p>\n<table>\n<tr>",
        title = escape(title),
        intro = escape(intro),
    );
    for h in std::iter::once(&"").chain(head) {
        html.push_str(&format!("<th>{}</th>", escape(h)));
    }
    html.push_str("</tr>\n");
    for (flagged, cells) in rows {
        let mark = if flagged { "BREAK-GLASS" } else { "" };
        html.push_str(if flagged {
            "<tr class=\"flag\">"
        } else {
            "<tr>"
        });
        for cell in std::iter::once(mark.to_owned()).chain(cells) {
            html.push_str(&format!("<td>{}</td>", escape(&cell)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

impl Accounting {
    /// A readable HTML page; emergency accesses are highlighted.
    pub fn to_html(&self) -> String {
        let rows = self
            .disclosures
            .iter()
            .map(|d| {
                let cells = vec![
                    d.occurred_at.to_rfc3339(),
                    d.actor_id.clone(),
                    d.actor_role.clone(),
                    d.purpose.clone(),
                    d.entity.clone(),
                    d.operation.clone(),
                    d.outcome.clone(),
                    d.record_ids.to_string(),
                    d.fields.to_string(),
                ];
                (d.break_glass, cells)
            })
            .collect();
        page(
            &format!("Accounting of disclosures: patient {}", self.patient_id),
            &format!(
                "{} accesses, {}.",
                self.disclosures.len(),
                period(self.from, self.to)
            ),
            &[
                "when",
                "actor",
                "role",
                "purpose",
                "entity",
                "operation",
                "outcome",
                "records",
                "fields",
            ],
            rows,
        )
    }
}

impl Summary {
    /// A readable HTML page; emergency rows are highlighted.
    pub fn to_html(&self) -> String {
        let emergency = Purpose::Emergency.as_str();
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let cells = vec![
                    r.actor_id.clone(),
                    r.actor_role.clone(),
                    r.purpose.clone(),
                    r.outcome.clone(),
                    r.accesses.to_string(),
                    r.patients.to_string(),
                ];
                (r.purpose == emergency, cells)
            })
            .collect();
        let behind: i64 = self.journals.iter().map(|j| j.behind).sum();
        let journals = match self.journals.iter().map(|j| j.last_shipped_at).min() {
            Some(oldest) => format!(
                " {} local audit journals; {behind} entries not yet in the log when they last shipped (the least recent at {}).",
                self.journals.len(),
                oldest.to_rfc3339()
            ),
            None => String::new(),
        };
        page(
            "PHI access summary",
            &format!(
                "{} accesses ({} break-glass), {}.{journals}",
                self.total,
                self.break_glass,
                period(self.from, self.to)
            ),
            &[
                "actor", "role", "purpose", "outcome", "accesses", "patients",
            ],
            rows,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_the_log_holds() {
        let summary = Summary {
            from: None,
            to: None,
            total: 1,
            break_glass: 0,
            rows: vec![SummaryRow {
                actor_id: "<script>alert('x')</script>&".into(),
                actor_role: "clinician".into(),
                purpose: "treatment".into(),
                outcome: "allowed".into(),
                accesses: 1,
                patients: 1,
            }],
            journals: Vec::new(),
        };
        let html = summary.to_html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"));
    }
}
