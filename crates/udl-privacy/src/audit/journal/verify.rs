//! Checking the local journals: each one's own chain, and that every line it has shipped is in
//! the PostgreSQL access log.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use udl_core::Result;
use udl_postgres::PgStore;
use uuid::Uuid;

use super::files::{journal_dir, journals, read_journal, try_lock};
use super::{JournalBreak, JournalLine, TornTail};

/// Lines looked up in PostgreSQL per query.
const LOOKUP: usize = 1000;

/// What was found in one journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalReport {
    /// The journal.
    pub journal: Uuid,
    /// Its directory.
    pub dir: PathBuf,
    /// Whether a live process holds it (and may still be appending).
    pub live: bool,
    /// Intact lines on disk (lines shipped earlier may have been removed with their segment).
    pub lines: u64,
    /// The newest position on disk.
    pub last: i64,
    /// How far PostgreSQL records the journal as shipped.
    pub shipped_through: i64,
    /// The first line recorded as shipped that the access log does not hold: position, entry id.
    pub missing: Option<(i64, Uuid)>,
    /// A last line cut short (expected while a live process writes).
    pub torn: Option<TornTail>,
    /// Where the journal's chain first stops holding.
    pub broken: Option<JournalBreak>,
}

impl JournalReport {
    /// Whether nothing is wrong with the journal.
    pub fn intact(&self) -> bool {
        self.missing.is_none() && self.broken.is_none() && (self.live || self.torn.is_none())
    }

    /// Lines on disk not yet in PostgreSQL.
    pub fn unshipped(&self) -> i64 {
        (self.last - self.shipped_through).max(0)
    }
}

fn classify(e: sqlx::Error) -> udl_core::Error {
    udl_postgres::classify(&e, "audit verify")
}

fn unreadable(e: std::io::Error, dir: &Path) -> udl_core::Error {
    udl_core::Error::new(
        udl_core::ErrorKind::Unavailable,
        format!("the audit journal {} could not be read: {e}", dir.display()),
    )
}

/// The first of `lines` the access log does not hold: its position and entry id.
async fn first_missing(pg: &PgStore, lines: &[&JournalLine]) -> Result<Option<(i64, Uuid)>> {
    for chunk in lines.chunks(LOOKUP) {
        let ids: Vec<Uuid> = chunk.iter().map(|l| l.entry.id).collect();
        // The time range lets PostgreSQL look in the partitions and BRIN ranges of the chunk.
        let from = chunk.iter().map(|l| l.entry.occurred_at).min();
        let to = chunk.iter().map(|l| l.entry.occurred_at).max();
        let found: HashSet<Uuid> = sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM phi_access_log
             WHERE occurred_at BETWEEN $1 AND $2 AND id = ANY($3)",
        )
        .bind(from)
        .bind(to)
        .bind(&ids)
        .fetch_all(pg.pool())
        .await
        .map_err(classify)?
        .into_iter()
        .collect();
        if let Some(line) = chunk.iter().find(|l| !found.contains(&l.entry.id)) {
            return Ok(Some((line.n, line.entry.id)));
        }
    }
    Ok(None)
}

/// Checks every journal under `root` against `pg`'s access log.
pub async fn verify_journals(pg: &PgStore, root: &Path) -> Result<Vec<JournalReport>> {
    let mut reports = Vec::new();
    for id in journals(root).map_err(|e| unreadable(e, root))? {
        let dir = journal_dir(root, id);
        let live = try_lock(&dir).map_err(|e| unreadable(e, &dir))?.is_none();
        let read = read_journal(&dir).map_err(|e| unreadable(e, &dir))?;
        let shipped_through: i64 = sqlx::query_scalar(
            "SELECT shipped_through FROM phi_audit_journals WHERE journal_id = $1",
        )
        .bind(id)
        .fetch_optional(pg.pool())
        .await
        .map_err(classify)?
        .unwrap_or(0);
        let shipped: Vec<&JournalLine> = read
            .lines
            .iter()
            .filter(|l| l.n <= shipped_through)
            .collect();
        let missing = first_missing(pg, &shipped).await?;
        reports.push(JournalReport {
            journal: id,
            dir,
            live,
            lines: read.lines.len() as u64,
            last: read.lines.last().map_or(shipped_through, |l| l.n),
            shipped_through,
            missing,
            torn: read.torn,
            broken: read.broken,
        });
    }
    Ok(reports)
}
