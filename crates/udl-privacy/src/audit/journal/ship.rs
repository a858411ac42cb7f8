//! The shipper: moves journal lines into the PostgreSQL access log, in order, in large
//! batches. At start (and every [`ORPHAN_SCAN`]) it first ships what journals of processes that
//! are gone left unshipped — a journal whose lock it can take has no live owner — and removes
//! them once shipped. A journal of its own is removed once it is retired and fully shipped.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use udl_core::Result;
use udl_postgres::models::PhiAccessLogEntry;
use uuid::Uuid;

use super::files::{cut, journal_dir, journals, read_journal, try_lock, unborn_journals};
use super::{host_name, JournalHandle, JournalLine, ShipQueue};
use crate::audit::chain::{Appended, Chain, JournalSpan};

/// Most entries in one shipped batch.
const SHIP_BATCH: usize = 4096;
/// How long the oldest waiting entry may wait for others to ship with it.
const GATHER: Duration = Duration::from_millis(20);
/// How old a journal directory still being made must be before it counts as abandoned.
const UNBORN_AFTER: Duration = Duration::from_secs(60);
/// How often journals left by processes that are gone are looked for.
const ORPHAN_SCAN: Duration = Duration::from_secs(30);
/// The longest pause between two attempts while PostgreSQL does not take a batch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Lags kept for [`Lags::quantile`].
const LAG_SAMPLES: usize = 64 * 1024;

/// How long shipped entries waited between their sync and their commit in PostgreSQL (the
/// most recent ones), and the metrics that show it with the backlog.
#[derive(Default)]
pub(crate) struct Lags {
    samples: Mutex<VecDeque<Duration>>,
    /// Where the backlog and the lags are reported, once set.
    pub metrics: std::sync::OnceLock<Arc<udl_metrics::Metrics>>,
}

impl Lags {
    fn record(&self, lags: Vec<Duration>) {
        if let Some(metrics) = self.metrics.get() {
            for lag in &lags {
                metrics.observe_audit_ship_lag(*lag);
            }
        }
        let mut kept = self.samples.lock().expect("lag lock");
        kept.extend(lags);
        let excess = kept.len().saturating_sub(LAG_SAMPLES);
        kept.drain(..excess);
    }

    /// Reports how many entries wait to ship.
    fn backlog(&self, waiting: usize) {
        if let Some(metrics) = self.metrics.get() {
            metrics.set_audit_unshipped(waiting);
        }
    }

    /// The `q` quantile (0..=1) of the kept lags, if any were recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self
            .samples
            .lock()
            .expect("lag lock")
            .iter()
            .copied()
            .collect();
        sorted.sort();
        let last = sorted.len().checked_sub(1)?;
        sorted
            .get(((last as f64) * q.clamp(0.0, 1.0)).round() as usize)
            .copied()
    }
}

/// Ships until the appender has stopped and everything it synced has shipped.
pub(crate) async fn ship(
    mut chain: Chain,
    root: PathBuf,
    queue: Arc<ShipQueue>,
    lags: Arc<Lags>,
    timeout: Duration,
) {
    let mut shipper = Shipper {
        root,
        host: host_name(),
        timeout,
        backoff: Duration::ZERO,
        known: Vec::new(),
    };
    shipper.ship_orphans(&mut chain).await;
    let mut scanned = Instant::now();
    loop {
        shipper.remove_finished();
        let (waiting, oldest) = queue.backlog();
        lags.backlog(waiting);
        // Let a batch gather for a moment: each shipped batch costs PostgreSQL a commit and the
        // chain's tip, so few large ones cost both sides far less than many small ones.
        if let Some(oldest) = oldest {
            if waiting < SHIP_BATCH && !queue.closed.load(Ordering::Acquire) {
                tokio::time::sleep_until((oldest + GATHER).into()).await;
            }
        }
        let Some((journal, lines)) = front_batch(&queue) else {
            if queue.closed.load(Ordering::Acquire) && queue.len() == 0 {
                break;
            }
            let wait = ORPHAN_SCAN.saturating_sub(scanned.elapsed());
            if tokio::time::timeout(wait, queue.more.notified())
                .await
                .is_err()
            {
                shipper.ship_orphans(&mut chain).await;
                scanned = Instant::now();
            }
            continue;
        };
        shipper.know(&journal);
        let appended = journal.appended.load(Ordering::Acquire);
        match shipper
            .ship_lines(&mut chain, journal.id, &journal.dir, &lines, appended)
            .await
        {
            Some(through) => {
                let now = Instant::now();
                let shipped = pop_through(&queue, journal.id, through);
                lags.record(shipped.into_iter().map(|at| now - at).collect());
                lags.backlog(queue.len());
                prune_segments(&journal, through);
                queue.progress.notify_waiters();
            }
            None => shipper.pause().await,
        }
    }
    shipper.remove_finished();
    chain.close().await;
}

/// The oldest waiting lines, all of one journal, with that journal, cloned (they leave the
/// queue once shipped).
fn front_batch(queue: &ShipQueue) -> Option<(Arc<JournalHandle>, Vec<JournalLine>)> {
    let waiting = queue.waiting.lock().expect("ship queue lock");
    let journal = Arc::clone(&waiting.front()?.journal);
    let lines = waiting
        .iter()
        .take(SHIP_BATCH)
        .take_while(|s| s.journal.id == journal.id)
        .map(|s| s.line.clone())
        .collect();
    Some((journal, lines))
}

/// Removes the waiting lines of `journal` through position `through`; when they were synced.
fn pop_through(queue: &ShipQueue, journal: Uuid, through: i64) -> Vec<Instant> {
    let mut waiting = queue.waiting.lock().expect("ship queue lock");
    let mut popped = Vec::new();
    while let Some(front) = waiting.front() {
        if front.journal.id != journal || front.line.n > through {
            break;
        }
        popped.push(front.synced_at);
        waiting.pop_front();
    }
    popped
}

/// Removes the segments of `journal` that hold only lines shipped through `through`.
fn prune_segments(journal: &JournalHandle, through: i64) {
    let mut segments = journal.segments.lock().expect("journal segment list lock");
    while segments.len() >= 2 && segments[1].0 <= through + 1 {
        let (_, path) = segments.remove(0);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, "a shipped audit journal segment could not be removed");
        }
    }
}

struct Shipper {
    root: PathBuf,
    host: String,
    timeout: Duration,
    backoff: Duration,
    /// This process's journals seen so far, until each is removed.
    known: Vec<Arc<JournalHandle>>,
}

impl Shipper {
    fn know(&mut self, journal: &Arc<JournalHandle>) {
        if !self.known.iter().any(|k| k.id == journal.id) {
            self.known.push(Arc::clone(journal));
        }
    }

    /// Removes this process's journals that are retired and have nothing left to ship.
    fn remove_finished(&mut self) {
        self.known.retain(|journal| {
            // Only this list holds it: the appender is done with it and no line of it waits.
            let done = journal.retired.load(Ordering::Acquire) && Arc::strong_count(journal) == 1;
            if done {
                if let Err(e) = std::fs::remove_dir_all(&journal.dir) {
                    tracing::warn!(error = %e, "a shipped audit journal could not be removed");
                }
            }
            !done
        });
    }

    /// Waits before the next attempt: longer each time PostgreSQL did not take a batch.
    async fn pause(&mut self) {
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(50), MAX_BACKOFF);
        tokio::time::sleep(self.backoff).await;
    }

    /// Ships `lines` (consecutive, of journal `id` in `dir`); how far the journal has shipped
    /// afterwards, or `None` when PostgreSQL did not take them (logged).
    async fn ship_lines(
        &mut self,
        chain: &mut Chain,
        id: Uuid,
        dir: &Path,
        lines: &[JournalLine],
        appended: i64,
    ) -> Option<i64> {
        let mut lines = lines;
        loop {
            let (first, last) = (lines.first()?, lines.last()?);
            let path = dir.display().to_string();
            let span = JournalSpan {
                journal: id,
                host: &self.host,
                path: &path,
                first: first.n,
                last: last.n,
                last_hash: &last.hash,
                appended: appended.max(last.n),
            };
            let entries: Vec<PhiAccessLogEntry> = lines.iter().map(|l| l.entry.clone()).collect();
            let outcome: Result<Appended> =
                match tokio::time::timeout(self.timeout, chain.append(&entries, Some(&span))).await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Err(udl_core::Error::new(
                        udl_core::ErrorKind::Timeout,
                        "shipping audit entries timed out",
                    )),
                };
            match outcome {
                Ok(Appended::Done) => {
                    self.backoff = Duration::ZERO;
                    return Some(last.n);
                }
                Ok(Appended::AlreadyShipped(through)) if through >= last.n => return Some(through),
                Ok(Appended::AlreadyShipped(through)) if through >= first.n => {
                    // Part of the batch had shipped (before a crash or a lost answer).
                    lines = &lines[(through - first.n + 1) as usize..];
                }
                Ok(Appended::AlreadyShipped(through)) => {
                    tracing::error!(journal = %id, through, first = first.n, "the access log records less of this audit journal than was shipped; shipping it is stopped");
                    return None;
                }
                Err(e) => {
                    chain.reset();
                    if self.backoff.is_zero() || self.backoff >= MAX_BACKOFF {
                        tracing::warn!(error = %e, "audit entries could not be shipped to PostgreSQL yet; they wait in the local journal");
                    }
                    return None;
                }
            }
        }
    }

    /// Ships and removes every journal under the root whose owner is gone. Stops at the first
    /// one PostgreSQL does not take (tried again at the next scan).
    async fn ship_orphans(&mut self, chain: &mut Chain) {
        self.remove_unborn();
        let ids = match journals(&self.root) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "the audit journal directory could not be listed");
                return;
            }
        };
        for id in ids {
            let dir = journal_dir(&self.root, id);
            let lock = match try_lock(&dir) {
                Ok(Some(lock)) => lock,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, journal = %id, "an audit journal could not be opened");
                    continue;
                }
            };
            if !self.adopt(chain, id, &dir).await {
                return;
            }
            drop(lock);
        }
    }

    /// Removes the directories of journals whose making a crash cut short: a minute old (one
    /// being made right now is younger) and their lock free.
    fn remove_unborn(&self) {
        let stale = |dir: &Path| {
            std::fs::metadata(dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > UNBORN_AFTER))
        };
        for dir in unborn_journals(&self.root).unwrap_or_default() {
            if !stale(&dir) {
                continue;
            }
            if let Ok(Some(_lock)) = try_lock(&dir) {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(error = %e, "a journal directory left half-made could not be removed");
                }
            }
        }
    }

    /// Ships what journal `id` left unshipped, and removes it; whether that went through.
    async fn adopt(&mut self, chain: &mut Chain, id: Uuid, dir: &Path) -> bool {
        let read = match read_journal(dir) {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, journal = %id, "an audit journal left by an earlier process could not be read");
                return true;
            }
        };
        if let Some(torn) = &read.torn {
            tracing::warn!(journal = %id, bytes = torn.bytes, "an audit journal ended in a line cut short by a crash; that line (which no access waited on) was cut off");
            if let Err(e) = cut(torn) {
                tracing::error!(error = %e, journal = %id, "a torn audit journal line could not be cut off");
                return true;
            }
        }
        if let Some(broken) = &read.broken {
            tracing::error!(journal = %id, n = broken.n, problem = ?broken.problem, "an audit journal's chain is broken; its lines before the break are shipped and the journal is kept for inspection (udl audit verify)");
        }
        let appended = read.lines.last().map_or(0, |l| l.n);
        for batch in read.lines.chunks(SHIP_BATCH) {
            loop {
                match self.ship_lines(chain, id, dir, batch, appended).await {
                    Some(_) => break,
                    None if self.backoff >= MAX_BACKOFF => return false,
                    None => self.pause().await,
                }
            }
        }
        if read.broken.is_none() {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::warn!(error = %e, journal = %id, "a shipped audit journal could not be removed");
            }
        } else {
            tracing::info!(journal = %id, "kept the broken audit journal");
        }
        true
    }
}
