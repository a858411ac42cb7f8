//! Walking the PHI access log's hash chain, in `seq` order and in pages, to find the first entry
//! that was edited, or that follows a deleted one.

use std::collections::BTreeMap;

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
    /// Entries retention removed with their month before the walked range's last entry, each
    /// vouched for by the anchors it left (`phi_access_log_retired`).
    pub retired: u64,
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
        // Entries retention removed count as reached: the anchors vouch for them.
        let (tip, last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT seq FROM phi_access_log_head),
                    GREATEST((SELECT max(seq) FROM phi_access_log),
                             (SELECT max(to_seq) FROM phi_access_log_retired))",
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

/// The runs of chain positions retention removed, with the hash of each run's last entry.
struct Retired(BTreeMap<i64, (i64, Vec<u8>)>);

impl Retired {
    async fn load(pg: &PgStore) -> Result<Self> {
        let rows: Vec<(i64, i64, Vec<u8>)> =
            sqlx::query_as("SELECT from_seq, to_seq, last_hash FROM phi_access_log_retired")
                .fetch_all(pg.pool())
                .await
                .map_err(classify)?;
        Ok(Retired(
            rows.into_iter()
                .map(|(from, to, hash)| (from, (to, hash)))
                .collect(),
        ))
    }

    /// The run starting at `seq`: its last position and hash.
    fn starting_at(&self, seq: i64) -> Option<(i64, &[u8])> {
        self.0.get(&seq).map(|(to, hash)| (*to, hash.as_slice()))
    }

    /// The hash of the run ending at `seq`.
    fn ending_at(&self, seq: i64) -> Option<&[u8]> {
        self.0
            .range(..=seq)
            .next_back()
            .filter(|(_, (to, _))| *to == seq)
            .map(|(_, (_, hash))| hash.as_slice())
    }

    /// How many entries the runs before position `seq` held.
    fn before(&self, seq: i64) -> u64 {
        self.0
            .range(..seq)
            .map(|(from, (to, _))| u64::try_from(to.min(&(seq - 1)) - from + 1).unwrap_or(0))
            .sum()
    }
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
    let retired = Retired::load(pg).await?;
    // The chain before the range is trusted only as far as the entry right before it (or the
    // anchor of the run retention removed right before it).
    let mut prev: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM phi_access_log WHERE seq = $1")
            .bind(first - 1)
            .fetch_optional(pg.pool())
            .await
            .map_err(classify)?;
    if prev.is_none() {
        prev = retired.ending_at(first - 1).map(<[u8]>::to_vec);
    }
    report.retired = retired.before(last);
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
            // Runs retention removed are crossed by their anchors, run after run.
            while let Some((to_seq, last_hash)) = retired.starting_at(expected_seq) {
                if to_seq >= entry.seq {
                    break;
                }
                expected_seq = to_seq + 1;
                prev = Some(last_hash.to_vec());
            }
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
