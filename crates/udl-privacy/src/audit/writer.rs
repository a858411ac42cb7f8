//! The audit writer: appends to the hash-chained PHI access log with group commit. Callers
//! wait until their entry is durable; entries that arrive while a commit is in flight go
//! together in the next one, so a busy process pays one transaction per batch, not per read.
//! Every process appends to one chain: a transaction-scoped advisory lock orders writers, and
//! each batch continues from the last committed `seq` and hash.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{Datelike as _, NaiveDate};
use sqlx::{Postgres, QueryBuilder};
use tokio::sync::{mpsc, oneshot};
use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_postgres::models::PhiAccessLogEntry;
use udl_postgres::PgStore;

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 1024;
/// Entries waiting for a commit before new ones wait for room.
const QUEUE: usize = 16 * 1024;

struct Pending {
    entry: PhiAccessLogEntry,
    done: oneshot::Sender<std::result::Result<(), ErrorKind>>,
}

/// Appends access-log entries durably, in batches.
pub struct AuditWriter {
    queue: mpsc::Sender<Pending>,
    timeout: Duration,
}

fn unrecorded(kind: ErrorKind) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "the access could not be recorded in the PHI audit log ({}), so the PHI access was refused",
            kind.name()
        ),
    )
    .with_store(StoreKind::Postgres)
    .with_operation("audit")
    .temporary(true)
}

impl AuditWriter {
    /// A writer appending to `pg`'s `phi_access_log`; an entry not durable within `timeout`
    /// fails. Runs until every handle is dropped.
    pub fn start(pg: PgStore, timeout: Duration) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(run(pg, pending, timeout));
        AuditWriter { queue, timeout }
    }

    /// Appends `entry` (its `seq` and hashes are assigned here) and returns once it is
    /// committed; an error means it was not, and the access must not go ahead.
    pub async fn append(&self, entry: PhiAccessLogEntry) -> Result<()> {
        let (done, committed) = oneshot::channel();
        let appended = async {
            self.queue
                .send(Pending { entry, done })
                .await
                .map_err(|_| ErrorKind::Unavailable)?;
            committed.await.map_err(|_| ErrorKind::Unavailable)?
        };
        match tokio::time::timeout(self.timeout, appended).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(kind)) => Err(unrecorded(kind)),
            Err(_) => Err(unrecorded(ErrorKind::Timeout)),
        }
    }
}

async fn run(pg: PgStore, mut pending: mpsc::Receiver<Pending>, timeout: Duration) {
    let mut months = HashSet::new();
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (entries, waiters): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.entry, p.done)).unzip();
        let outcome = match tokio::time::timeout(timeout, commit(&pg, &mut months, entries)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, count = waiters.len(), "PHI audit entries not recorded");
                Err(e.kind())
            }
            Err(_) => {
                tracing::error!(count = waiters.len(), "PHI audit commit timed out");
                Err(ErrorKind::Timeout)
            }
        };
        for waiter in waiters {
            // A waiter that gave up has already failed its access.
            let _ = waiter.send(outcome);
        }
    }
}

fn store_error(e: &sqlx::Error) -> Error {
    udl_postgres::classify(e, "audit")
}

/// The months' partitions, made once per process.
async fn ensure_partitions(
    pg: &PgStore,
    months: &mut HashSet<NaiveDate>,
    entries: &[PhiAccessLogEntry],
) -> Result<()> {
    for entry in entries {
        let day = entry.occurred_at.date_naive();
        let month = day.with_day(1).unwrap_or(day);
        if months.contains(&month) {
            continue;
        }
        sqlx::query("SELECT udl_access_log_partition($1)")
            .bind(month)
            .execute(pg.pool())
            .await
            .map_err(|e| store_error(&e))?;
        months.insert(month);
    }
    Ok(())
}

async fn commit(
    pg: &PgStore,
    months: &mut HashSet<NaiveDate>,
    entries: Vec<PhiAccessLogEntry>,
) -> Result<()> {
    ensure_partitions(pg, months, &entries).await?;
    let mut tx = pg.pool().begin().await.map_err(|e| store_error(&e))?;
    // One chain per schema: writers in other schemas of the database do not wait.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.phi_access_log'))")
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(&e))?;
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM phi_access_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| store_error(&e))?;
    let (mut seq, mut prev) = match last {
        Some((seq, hash)) => (seq, Some(hash)),
        None => (0, None),
    };
    let sealed: Vec<PhiAccessLogEntry> = entries
        .into_iter()
        .map(|entry| {
            seq += 1;
            let entry = PhiAccessLogEntry { seq, ..entry }.sealed_after(prev.take());
            prev = Some(entry.hash.clone());
            entry
        })
        .collect();
    let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO phi_access_log (seq, id, occurred_at, actor_id, actor_role, purpose, \
         patient_id, entity, record_ids, fields, operation, outcome, request_id, prev_hash, hash) ",
    );
    insert.push_values(&sealed, |mut row, e| {
        row.push_bind(e.seq)
            .push_bind(e.id)
            .push_bind(e.occurred_at)
            .push_bind(&e.actor_id)
            .push_bind(e.actor_role.as_str())
            .push_bind(e.purpose.as_str())
            .push_bind(&e.patient_id)
            .push_bind(&e.entity)
            .push_bind(&e.record_ids)
            .push_bind(&e.fields)
            .push_bind(&e.operation)
            .push_bind(e.outcome.as_str())
            .push_bind(&e.request_id)
            .push_bind(&e.prev_hash)
            .push_bind(&e.hash);
    });
    insert
        .build()
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error(&e))?;
    tx.commit().await.map_err(|e| store_error(&e))
}
