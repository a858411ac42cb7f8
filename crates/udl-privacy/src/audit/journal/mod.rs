//! The local audit journal: the durable point of a PHI access. Each process appends its access
//! entries to a journal of its own (a directory under `privacy.audit_journal_dir`, locked while
//! the process lives, in segments), hash-chained line by line, and syncs once per batch (group
//! commit, led by the accessing tasks: one `fdatasync` for every access that arrived
//! meanwhile) before the batch's accesses go ahead. A shipper then moves the entries, in order and in large batches, into the access
//! log in PostgreSQL and its one chain, recording each journal's shipped position in the same
//! call, so every entry lands there exactly once.
//!
//! What each failure loses: a process crash, nothing (every access that went ahead was synced;
//! the next process to start on the directory ships what is left, and a last line cut short by
//! the crash, which no access waited on, is cut off and reported). PostgreSQL down: nothing;
//! entries wait in the journal, and PHI access is refused once more than
//! `privacy.audit_max_unshipped` entries, or any older than `privacy.audit_max_unshipped_age`,
//! are waiting. The local disk lost before its entries shipped: at most that bound.
//!
//! Fail closed: a journal that cannot be made, written or synced refuses the batch's accesses
//! (`Unavailable`); after a failed write or sync the journal is never written again (a sync that
//! failed once cannot be trusted to have kept anything) and the next batch starts a new one.

mod append;
mod files;
mod group;
mod line;
mod ship;
mod verify;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use uuid::Uuid;

pub(crate) use append::Refusal;
pub use files::{JournalBreak, JournalProblem, TornTail};
pub(crate) use group::GroupJournal;
pub(crate) use ship::{ship, Lags};
pub use verify::{verify_journals, JournalReport};

use line::JournalLine;

/// Where journals live and how far behind PostgreSQL they may fall.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// The directory holding every process's journal (each in a directory of its own).
    pub dir: PathBuf,
    /// Most entries waiting to ship before PHI access is refused.
    pub max_unshipped: usize,
    /// Oldest an entry waiting to ship may be before PHI access is refused.
    pub max_unshipped_age: Duration,
}

/// One journal this process holds the lock of.
pub(crate) struct JournalHandle {
    id: Uuid,
    dir: PathBuf,
    /// Held while this process lives: the journal is no one else's to ship.
    _lock: File,
    /// Its segments, in order, with the position of their first line.
    segments: Mutex<Vec<(i64, PathBuf)>>,
    /// The newest position synced.
    appended: AtomicI64,
    /// Whether nothing more will be appended to it (closed, or after a failed write).
    retired: AtomicBool,
}

/// A synced line waiting to ship.
pub(crate) struct Shippable {
    journal: Arc<JournalHandle>,
    line: JournalLine,
    synced_at: Instant,
}

/// The lines of this process's journals waiting to ship, oldest first.
#[derive(Default)]
pub(crate) struct ShipQueue {
    waiting: Mutex<VecDeque<Shippable>>,
    /// Woken when lines arrive, or when the appender stops.
    more: Notify,
    /// Woken after each shipped batch.
    progress: Notify,
    /// Set when the appender has stopped: once empty, nothing more will come.
    closed: AtomicBool,
}

impl ShipQueue {
    /// How many lines wait, and since when the oldest does.
    fn backlog(&self) -> (usize, Option<Instant>) {
        let waiting = self.waiting.lock().expect("ship queue lock");
        (waiting.len(), waiting.front().map(|s| s.synced_at))
    }

    /// How many lines wait.
    pub fn len(&self) -> usize {
        self.backlog().0
    }

    fn push(&self, lines: impl IntoIterator<Item = Shippable>) {
        self.waiting.lock().expect("ship queue lock").extend(lines);
        self.more.notify_one();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.more.notify_one();
    }

    /// Waits until every line waiting now has shipped, or `grace` passed; how many are left.
    pub async fn drained(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            let left = self.len();
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                return self.len();
            }
        }
    }
}

/// The machine's name, for operators looking for a journal.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}
