//! Appending to the PHI access log's one hash chain in PostgreSQL, shared by every process. A
//! batch is one call of `udl_audit_append`: it moves the chain's tip (`phi_access_log_head`)
//! from the `seq` it chained onto to its own last entry and inserts its entries, or, when another
//! process moved the tip first, does nothing; the batch is then chained again onto the new tip.
//! A batch shipped from a local journal also moves that journal's shipped position in the same
//! call, so a journal entry reaches the log exactly once, whatever fails in between.
//! One round trip per batch while a process writes alone. The chain keeps a connection of its
//! own: it never waits behind reads for a pooled one, and skips the liveness ping a pool makes
//! on every checkout. It pings only a connection that sat idle (where a restarted server or a
//! dropped idle link would show), renews it after the pool's `max_lifetime`, and connects anew
//! after any failure.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{Datelike as _, NaiveDate};
use sqlx::{Connection as _, PgConnection};
use udl_core::{Error, ErrorKind, Result};
use udl_postgres::models::PhiAccessLogEntry;
use udl_postgres::PgStore;
use uuid::Uuid;

/// Where a batch sits in the local journal it ships from.
pub(crate) struct JournalSpan<'a> {
    /// The journal.
    pub journal: Uuid,
    /// The machine and directory holding it (for operators looking for a journal).
    pub host: &'a str,
    pub path: &'a str,
    /// The journal positions of the batch's first and last entries.
    pub first: i64,
    pub last: i64,
    /// The journal hash of the batch's last entry.
    pub last_hash: &'a [u8],
    /// The journal's newest position when the batch was taken.
    pub appended: i64,
}

/// What became of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    /// It is in the log.
    Done,
    /// Nothing was done: its journal had already shipped through this position.
    AlreadyShipped(i64),
}

/// Where the chain ends: the last entry's `seq` and hash.
#[derive(Clone)]
struct Tip {
    seq: i64,
    hash: Option<Vec<u8>>,
}

/// A chain connection unused this long is pinged before its next batch.
const IDLE_PING: Duration = Duration::from_secs(1);

/// Re-chainings of one batch before giving up (each means another process appended first).
const MAX_ATTEMPTS: usize = 20;

/// The connection and its age.
struct ChainConn {
    conn: PgConnection,
    opened: Instant,
    used: Instant,
}

/// What an appender remembers between batches.
pub(crate) struct Chain {
    pg: PgStore,
    /// The own connection; `None` until made, and after a failure.
    conn: Option<ChainConn>,
    months: HashSet<NaiveDate>,
    /// The tip after this appender's last batch; `None` until read, and after a failure.
    tip: Option<Tip>,
}

fn store_error(e: &sqlx::Error) -> Error {
    udl_postgres::classify(e, "audit")
}

impl Chain {
    /// An appender to `pg`'s access log.
    pub fn new(pg: PgStore) -> Self {
        Chain {
            pg,
            conn: None,
            months: HashSet::new(),
            tip: None,
        }
    }

    /// Forgets the tip and the connection after a failed or abandoned batch: whether its last
    /// statement landed is unknown, and the connection may be broken or mid-statement.
    pub fn reset(&mut self) {
        self.tip = None;
        self.conn = None;
    }

    /// Says goodbye to the server, so it does not log a lost client.
    pub async fn close(mut self) {
        if let Some(open) = self.conn.take() {
            let _ = open.conn.close().await;
        }
    }

    /// The own connection: the one it has while that is young enough and, after a pause,
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
            None => ChainConn {
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

    /// Appends `entries` (their `seq` and hashes assigned here) after whatever the chain ends
    /// with, durably; from `journal`, when they ship from one. `entries` is never empty.
    pub async fn append(
        &mut self,
        entries: &[PhiAccessLogEntry],
        journal: Option<&JournalSpan<'_>>,
    ) -> Result<Appended> {
        self.ensure_partitions(entries).await?;
        for _ in 0..MAX_ATTEMPTS {
            let tip = match self.tip.take() {
                Some(tip) => tip,
                None => self.read_tip().await?,
            };
            let sealed = chained(entries, &tip);
            let last = sealed.last().expect("a batch is never empty");
            let answer = append_after(self.conn().await?, &tip, &sealed, journal).await?;
            if answer == -1 {
                continue;
            }
            match journal {
                Some(span) if answer != span.last => {
                    // Nothing was appended, so the tip is where it was.
                    self.tip = Some(tip);
                    return Ok(Appended::AlreadyShipped(answer));
                }
                _ => {
                    self.tip = Some(Tip {
                        seq: last.seq,
                        hash: Some(last.hash.clone()),
                    });
                    return Ok(Appended::Done);
                }
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

/// The same text for every batch, so it is prepared once per connection.
const APPEND: &str = "SELECT udl_audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
    $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)";

/// One column of the batch, as an array parameter.
fn column<T>(sealed: &[PhiAccessLogEntry], value: impl Fn(&PhiAccessLogEntry) -> T) -> Vec<T> {
    sealed.iter().map(value).collect()
}

/// Calls `udl_audit_append` for `sealed` chained onto `tip`; its answer.
async fn append_after(
    conn: &mut PgConnection,
    tip: &Tip,
    sealed: &[PhiAccessLogEntry],
    journal: Option<&JournalSpan<'_>>,
) -> Result<i64> {
    let last = sealed.last().expect("a batch is never empty");
    sqlx::query_scalar(APPEND)
        .bind(journal.map(|j| j.journal))
        .bind(journal.map(|j| j.host))
        .bind(journal.map(|j| j.path))
        .bind(journal.map(|j| j.first))
        .bind(journal.map(|j| j.last))
        .bind(journal.map(|j| j.last_hash))
        .bind(journal.map(|j| j.appended))
        .bind(tip.seq)
        .bind(last.seq)
        .bind(&last.hash)
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
        .fetch_one(conn)
        .await
        .map_err(|e| store_error(&e))
}
