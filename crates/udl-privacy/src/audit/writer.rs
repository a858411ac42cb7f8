//! The audit writer: appends to the hash-chained PHI access log with group commit. Callers
//! wait until their entry is durable; entries that arrive while a commit is in flight go
//! together in the next one, so a busy process pays one transaction per batch, not per read.
//! Every process appends to one chain. A batch is one statement: it moves the chain's tip
//! (`phi_access_log_head`) from the `seq` it chained onto to its own last entry and inserts its
//! entries, or, when another process moved the tip first, does nothing; the writer then reads the
//! tip again and re-chains the batch. One round trip per batch while a process writes alone.
//! The writer keeps a connection of its own: it never waits behind reads for a pooled one, and
//! skips the liveness ping a pool makes on every checkout. It pings only a connection that sat
//! idle (where a restarted server or a dropped idle link would show), renews it after the pool's
//! `max_lifetime`, and connects anew after any failure.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{Datelike as _, NaiveDate};
use sqlx::{Connection as _, PgConnection};
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

/// The error of a PHI access refused because a safeguard in PostgreSQL could not act:
/// `cause`, then the kind of the failure behind it.
pub(crate) fn phi_refused(cause: &str, operation: &'static str, kind: ErrorKind) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("{cause} ({}), so the PHI access was refused", kind.name()),
    )
    .with_store(StoreKind::Postgres)
    .with_operation(operation)
    .temporary(true)
}

fn unrecorded(kind: ErrorKind) -> Error {
    phi_refused(
        "the access could not be recorded in the PHI audit log",
        "audit",
        kind,
    )
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

/// Where the chain ends: the last entry's `seq` and hash.
#[derive(Clone)]
struct Tip {
    seq: i64,
    hash: Option<Vec<u8>>,
}

/// What the writer remembers between batches.
struct Chain {
    pg: PgStore,
    /// The writer's own connection; `None` until made, and after a failure.
    conn: Option<WriterConn>,
    months: HashSet<NaiveDate>,
    /// The tip after this writer's last batch; `None` until read, and after a failure.
    tip: Option<Tip>,
}

/// A writer connection unused this long is pinged before its next batch.
const IDLE_PING: Duration = Duration::from_secs(1);

/// The writer's connection and its age.
struct WriterConn {
    conn: PgConnection,
    opened: Instant,
    used: Instant,
}

/// Re-chainings of one batch before giving up (each means another process appended first).
const MAX_ATTEMPTS: usize = 20;

async fn run(pg: PgStore, mut pending: mpsc::Receiver<Pending>, timeout: Duration) {
    let mut chain = Chain {
        pg,
        conn: None,
        months: HashSet::new(),
        tip: None,
    };
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
        let outcome = match tokio::time::timeout(timeout, chain.append(&entries)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, count = waiters.len(), "PHI audit entries not recorded");
                Err(e.kind())
            }
            Err(_) => {
                tracing::error!(count = waiters.len(), "PHI audit append timed out");
                Err(ErrorKind::Timeout)
            }
        };
        if outcome.is_err() {
            // Whether the last statement landed is unknown: read the tip again next time, over
            // a new connection (this one may be broken, or mid-statement after a timeout).
            chain.tip = None;
            chain.conn = None;
        }
        for waiter in waiters {
            // A waiter that gave up has already failed its access.
            let _ = waiter.send(outcome);
        }
    }
    // Every handle is gone: say goodbye, so the server does not log a lost client.
    if let Some(open) = chain.conn.take() {
        let _ = open.conn.close().await;
    }
}

fn store_error(e: &sqlx::Error) -> Error {
    udl_postgres::classify(e, "audit")
}

impl Chain {
    /// The writer's connection: the one it has while that is young enough and, after a pause,
    /// answers a ping; otherwise a new one.
    async fn conn(&mut self) -> Result<&mut PgConnection> {
        let now = Instant::now();
        let max_lifetime = self.pg.pool().options().get_max_lifetime();
        let mut kept = self.conn.take();
        if let Some(old) = kept.take_if(|c| max_lifetime.is_some_and(|max| now - c.opened >= max)) {
            let _ = old.conn.close().await;
        }
        if let Some(c) = kept.as_mut().filter(|c| now - c.used >= IDLE_PING) {
            if c.conn.ping().await.is_err() {
                kept = None;
            }
        }
        let conn = match kept {
            Some(c) => c,
            None => WriterConn {
                conn: PgConnection::connect_with(&self.pg.pool().connect_options())
                    .await
                    .map_err(|e| store_error(&e))?,
                opened: now,
                used: now,
            },
        };
        let conn = self.conn.insert(conn);
        conn.used = now;
        Ok(&mut conn.conn)
    }

    /// The months' partitions, made once per process.
    async fn ensure_partitions(&mut self, entries: &[PhiAccessLogEntry]) -> Result<()> {
        for entry in entries {
            let day = entry.occurred_at.date_naive();
            let month = day.with_day(1).unwrap_or(day);
            if self.months.contains(&month) {
                continue;
            }
            sqlx::query("SELECT udl_access_log_partition($1)")
                .bind(month)
                .execute(self.conn().await?)
                .await
                .map_err(|e| store_error(&e))?;
            self.months.insert(month);
        }
        Ok(())
    }

    async fn read_tip(&mut self) -> Result<Tip> {
        let (seq, hash) = sqlx::query_as("SELECT seq, hash FROM phi_access_log_head")
            .fetch_one(self.conn().await?)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(Tip { seq, hash })
    }

    /// Appends `entries` durably, after whatever the chain ends with.
    async fn append(&mut self, entries: &[PhiAccessLogEntry]) -> Result<()> {
        self.ensure_partitions(entries).await?;
        for _ in 0..MAX_ATTEMPTS {
            let tip = match self.tip.take() {
                Some(tip) => tip,
                None => self.read_tip().await?,
            };
            let sealed = chained(entries, &tip);
            if append_after(self.conn().await?, &tip, &sealed).await? {
                let last = sealed.last().expect("a batch is never empty");
                self.tip = Some(Tip {
                    seq: last.seq,
                    hash: Some(last.hash.clone()),
                });
                return Ok(());
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            "other writers kept moving the PHI audit chain; the batch was not appended",
        )
        .temporary(true))
    }
}

/// `entries` numbered and hashed to follow `tip`.
fn chained(entries: &[PhiAccessLogEntry], tip: &Tip) -> Vec<PhiAccessLogEntry> {
    let (mut seq, mut prev) = (tip.seq, tip.hash.clone());
    entries
        .iter()
        .map(|entry| {
            seq += 1;
            let entry = PhiAccessLogEntry {
                seq,
                ..entry.clone()
            }
            .sealed_after(prev.take());
            prev = Some(entry.hash.clone());
            entry
        })
        .collect()
}

/// Moves the tip past the batch if it is still where the batch was chained onto, and inserts
/// the batch, in one statement; the same text for every batch, so it is prepared once.
const APPEND: &str = "WITH tip AS (
    UPDATE phi_access_log_head SET seq = $1, hash = $2 WHERE seq = $3 RETURNING 1)
  INSERT INTO phi_access_log (seq, id, occurred_at, actor_id, actor_role, purpose, patient_id,
    entity, record_ids, fields, operation, outcome, request_id, prev_hash, hash)
  SELECT * FROM unnest($4::bigint[], $5::uuid[], $6::timestamptz[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::jsonb[], $14::text[], $15::text[],
    $16::text[], $17::bytea[], $18::bytea[])
  WHERE EXISTS (SELECT 1 FROM tip)";

/// One column of the batch, as an array parameter.
fn column<T>(sealed: &[PhiAccessLogEntry], value: impl Fn(&PhiAccessLogEntry) -> T) -> Vec<T> {
    sealed.iter().map(value).collect()
}

/// Inserts `sealed` and moves the tip past it, if the tip is still `tip`; whether it was.
async fn append_after(
    conn: &mut PgConnection,
    tip: &Tip,
    sealed: &[PhiAccessLogEntry],
) -> Result<bool> {
    let last = sealed.last().expect("a batch is never empty");
    let done = sqlx::query(APPEND)
        .bind(last.seq)
        .bind(&last.hash)
        .bind(tip.seq)
        .bind(column(sealed, |e| e.seq))
        .bind(column(sealed, |e| e.id))
        .bind(column(sealed, |e| e.occurred_at))
        .bind(column(sealed, |e| e.actor_id.clone()))
        .bind(column(sealed, |e| e.actor_role.as_str()))
        .bind(column(sealed, |e| e.purpose.as_str()))
        .bind(column(sealed, |e| e.patient_id.clone()))
        .bind(column(sealed, |e| e.entity.clone()))
        .bind(column(sealed, |e| e.record_ids.clone()))
        .bind(column(sealed, |e| e.fields.clone()))
        .bind(column(sealed, |e| e.operation.clone()))
        .bind(column(sealed, |e| e.outcome.as_str()))
        .bind(column(sealed, |e| e.request_id.clone()))
        .bind(column(sealed, |e| e.prev_hash.clone()))
        .bind(column(sealed, |e| e.hash.clone()))
        .execute(conn)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(done.rows_affected() == sealed.len() as u64)
}
