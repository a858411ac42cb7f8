//! Walking the PHI access log's hash chain, in `seq` order and in pages, to find the first entry
//! that was edited, or that follows a deleted one.

use chrono::{DateTime, Utc};
use udl_core::{field, AccessContext, Page, Result, SortKey};
use udl_postgres::models::{verify_chain, BrokenLink, PhiAccessLogEntry};
use udl_postgres::PgStore;

/// Entries read per page.
const PAGE: usize = 1000;

/// What is wrong with the first bad entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainProblem {
    /// Its content no longer matches its hash: it was edited.
    Altered,
    /// It does not link to the entry before it: entries were deleted or replaced before it.
    Unlinked,
}

/// The first entry at which the chain stops holding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenEntry {
    /// Its position in the chain.
    pub seq: i64,
    /// Its id.
    pub id: uuid::Uuid,
    /// When it was logged.
    pub occurred_at: DateTime<Utc>,
    /// What is wrong.
    pub problem: ChainProblem,
}

/// The result of a walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked.
    pub checked: u64,
    /// First and last `seq` of the walked range, when it held entries.
    pub range: Option<(i64, i64)>,
    /// The first bad entry, if any.
    pub broken: Option<BrokenEntry>,
    /// When the newest entries are gone: the last `seq` present and the one the chain's tip
    /// records (checked when the walk is open-ended).
    pub tail_missing: Option<(i64, i64)>,
}

impl ChainReport {
    /// Whether the walk found nothing wrong.
    pub fn intact(&self) -> bool {
        self.broken.is_none() && self.tail_missing.is_none()
    }
}

fn broken(entry: &PhiAccessLogEntry, problem: ChainProblem) -> Option<BrokenEntry> {
    Some(BrokenEntry {
        seq: entry.seq,
        id: entry.id,
        occurred_at: entry.occurred_at,
        problem,
    })
}

fn classify(e: sqlx::Error) -> udl_core::Error {
    udl_postgres::classify(&e, "audit verify")
}

/// Verifies the entries logged in `[from, to)` (either end open), and their link to the entry
/// just before; without `to`, also that the log still reaches the chain's recorded tip (the
/// newest entries were not deleted).
pub async fn verify_log(
    pg: &PgStore,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<ChainReport> {
    let mut report = walk(pg, from, to).await?;
    if to.is_none() && report.broken.is_none() {
        let (tip, last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT seq FROM phi_access_log_head), (SELECT max(seq) FROM phi_access_log)",
        )
        .fetch_one(pg.pool())
        .await
        .map_err(classify)?;
        let last = last.unwrap_or(0);
        if tip > last {
            report.tail_missing = Some((last, tip));
        }
    }
    Ok(report)
}

async fn walk(
    pg: &PgStore,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<ChainReport> {
    let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT min(seq), max(seq) FROM phi_access_log
         WHERE ($1::timestamptz IS NULL OR occurred_at >= $1)
           AND ($2::timestamptz IS NULL OR occurred_at < $2)",
    )
    .bind(from)
    .bind(to)
    .fetch_one(pg.pool())
    .await
    .map_err(classify)?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(ChainReport::default());
    };
    let mut report = ChainReport {
        range: Some((first, last)),
        ..ChainReport::default()
    };
    // The chain before the range is trusted only as far as the entry right before it.
    let mut prev: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM phi_access_log WHERE seq = $1")
            .bind(first - 1)
            .fetch_optional(pg.pool())
            .await
            .map_err(classify)?;
    // Without the entry before the range (and not at the chain's start), the first entry is
    // expected one earlier than it is, so it is reported as unlinked.
    let mut expected_seq = if prev.is_some() || first == 1 {
        first
    } else {
        first - 1
    };
    let log = pg.unaudited_repository::<PhiAccessLogEntry>()?;
    let ctx = AccessContext::system("audit-verify");
    let mut after = first - 1;
    while after < last {
        let filter = field("seq").gt(after).and(field("seq").lte(last));
        let page = log
            .list(&ctx, &filter, &[SortKey::asc("seq")], Page::first(PAGE))
            .await?
            .items;
        let Some(tail) = page.last() else { break };
        after = tail.seq;
        for (i, entry) in page.iter().enumerate() {
            if entry.seq != expected_seq {
                report.broken = broken(entry, ChainProblem::Unlinked);
                return Ok(report);
            }
            expected_seq += 1;
            if let Err(link) = verify_chain(&page[i..=i], prev.as_deref()) {
                let problem = match link {
                    BrokenLink::Altered { .. } => ChainProblem::Altered,
                    BrokenLink::Unlinked { .. } => ChainProblem::Unlinked,
                };
                report.broken = broken(entry, problem);
                return Ok(report);
            }
            prev = Some(entry.hash.clone());
            report.checked += 1;
        }
    }
    Ok(report)
}
