//! The appender: the open journal and what writing to it takes. It writes a batch of entries
//! to the journal as one write and syncs once before any of their accesses goes ahead; who
//! calls it, and when, is the group commit's business ([`super::group`]).

use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use udl_core::ErrorKind;
use udl_postgres::models::PhiAccessLogEntry;
use uuid::Uuid;

use super::files::{
    create_segment, grow, journal_dir, make_dir, segment_path, sync_parent, try_lock, UNBORN,
};
use super::{JournalConfig, JournalHandle, JournalLine, ShipQueue, Shippable};

/// A segment this large gets a successor before the next write.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// How much zeroed room a segment gains at a time (a few milliseconds of writing, once every
/// couple of thousand entries).
const GROW_BYTES: u64 = 1024 * 1024;
/// Fewest seconds between two log lines about the same kind of failure.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Why an access's entry was not made durable, as the access's error will say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub cause: &'static str,
    pub kind: ErrorKind,
}

pub(crate) const UNWRITABLE: Refusal = Refusal {
    cause: "the access could not be recorded in the local audit journal",
    kind: ErrorKind::Unavailable,
};
const TOO_MANY_UNSHIPPED: Refusal = Refusal {
    cause: "more audit entries wait to reach PostgreSQL than privacy.audit_max_unshipped allows",
    kind: ErrorKind::Unavailable,
};
const TOO_OLD_UNSHIPPED: Refusal = Refusal {
    cause: "an audit entry has waited to reach PostgreSQL longer than privacy.audit_max_unshipped_age allows",
    kind: ErrorKind::Unavailable,
};

/// The journal being written.
struct Open {
    handle: Arc<JournalHandle>,
    segment: std::fs::File,
    /// Where the next line goes: the end of the segment's lines.
    segment_len: u64,
    /// How far the segment is zeroed on disk, ready for lines.
    zeroed: u64,
    next_n: i64,
    prev: Option<Vec<u8>>,
}

/// Writes batches to this process's journal, opening a new one when there is none (at the
/// first batch, and after a failed write).
pub(crate) struct Appender {
    config: JournalConfig,
    queue: Arc<ShipQueue>,
    open: Option<Open>,
    last_logged: Option<Instant>,
}

impl Appender {
    /// An appender of journals under `config.dir`, handing what it synced to `queue`.
    pub(crate) fn new(config: JournalConfig, queue: Arc<ShipQueue>) -> Self {
        Appender {
            config,
            queue,
            open: None,
            last_logged: None,
        }
    }

    /// Makes `entries` durable and hands them to the shipper, or refuses them all. Blocks for
    /// the write and the sync.
    pub(crate) fn commit(&mut self, entries: Vec<PhiAccessLogEntry>) -> Result<(), Refusal> {
        self.admit(entries.len())
            .and_then(|()| self.write(entries))
            .map(|synced| self.queue.push(synced))
    }

    /// Whether `count` more entries fit in the bound on what waits to ship.
    fn admit(&mut self, count: usize) -> Result<(), Refusal> {
        let (waiting, oldest) = self.queue.backlog();
        let refusal = if waiting + count > self.config.max_unshipped {
            TOO_MANY_UNSHIPPED
        } else if oldest.is_some_and(|t| t.elapsed() > self.config.max_unshipped_age) {
            TOO_OLD_UNSHIPPED
        } else {
            return Ok(());
        };
        self.log(|| tracing::error!(waiting, "PHI access refused: {}", refusal.cause));
        Err(refusal)
    }

    /// Logs with `line` unless a line was logged within [`LOG_EVERY`].
    fn log(&mut self, line: impl FnOnce()) {
        if self.last_logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            self.last_logged = Some(Instant::now());
            line();
        }
    }

    /// Writes `entries` to the journal and syncs them.
    fn write(&mut self, entries: Vec<PhiAccessLogEntry>) -> Result<Vec<Shippable>, Refusal> {
        match self.try_write(entries) {
            Ok(synced) => Ok(synced),
            Err(e) => {
                let dir = self.config.dir.display().to_string();
                self.log(|| {
                    tracing::error!(error = %e, dir, "the local audit journal could not be written; PHI access is refused until it can");
                });
                // Never write to a journal after a failed write or sync: start a new one.
                self.retire();
                Err(UNWRITABLE)
            }
        }
    }

    fn try_write(&mut self, entries: Vec<PhiAccessLogEntry>) -> io::Result<Vec<Shippable>> {
        if self.open.is_none() {
            self.open = Some(open_new(&self.config.dir)?);
        }
        let open = self.open.as_mut().expect("opened above");
        let mut lines = Vec::with_capacity(entries.len());
        let (mut n, mut prev) = (open.next_n, open.prev.clone());
        for entry in entries {
            let line = JournalLine::new(n, prev.take(), entry);
            prev = Some(line.hash.clone());
            n += 1;
            lines.push(line);
        }
        let mut bytes = Vec::new();
        for line in &lines {
            bytes.extend_from_slice(&line.encode());
        }
        if open.segment_len > 0 && open.segment_len + bytes.len() as u64 > SEGMENT_BYTES {
            let path = segment_path(&open.handle.dir, open.next_n);
            open.segment = create_segment(&path)?;
            open.segment_len = 0;
            open.zeroed = 0;
            lock(&open.handle.segments).push((open.next_n, path));
        }
        let needed = open.segment_len + bytes.len() as u64;
        if needed > open.zeroed {
            let more = (needed - open.zeroed).max(GROW_BYTES);
            grow(&open.segment, open.zeroed, more)?;
            open.zeroed += more;
        }
        open.segment.write_all_at(&bytes, open.segment_len)?;
        open.segment.sync_data()?;
        open.segment_len += bytes.len() as u64;
        open.next_n = n;
        open.prev = prev;
        open.handle.appended.store(n - 1, Ordering::Release);
        let synced_at = Instant::now();
        Ok(lines
            .into_iter()
            .map(|line| Shippable {
                journal: Arc::clone(&open.handle),
                line,
                synced_at,
            })
            .collect())
    }

    /// Zeroes more room in the open segment when little is left, so a batch seldom waits
    /// for it. A failure here is left to the next batch's own growing.
    pub(crate) fn grow_ahead(&mut self) {
        if let Some(open) = self.open.as_mut() {
            if open.zeroed - open.segment_len < GROW_BYTES / 2
                && open.zeroed + GROW_BYTES <= SEGMENT_BYTES
                && grow(&open.segment, open.zeroed, GROW_BYTES).is_ok()
            {
                open.zeroed += GROW_BYTES;
            }
        }
    }

    /// Stops writing to the open journal; the shipper removes it once it has shipped.
    fn retire(&mut self) {
        if let Some(open) = self.open.take() {
            open.handle.retired.store(true, Ordering::Release);
            // Wake the shipper, so it removes a journal that has nothing left to ship.
            self.queue.more.notify_one();
        }
    }
}

impl Drop for Appender {
    /// Nothing more will be appended: the shipper ships what is left and stops.
    fn drop(&mut self) {
        self.retire();
        self.queue.close();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().expect("journal segment list lock")
}

/// A new journal under `root`: its directory, its lock taken, its first segment. It is made
/// under a name no shipper looks at and renamed into place once locked, so no shipper can take
/// it for a journal left behind.
fn open_new(root: &Path) -> io::Result<Open> {
    let id = Uuid::new_v4();
    let making = root.join(format!("{UNBORN}{id}"));
    make_dir(&making)?;
    let lock = try_lock(&making)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::WouldBlock,
            "a new journal was already locked",
        )
    })?;
    let dir = journal_dir(root, id);
    std::fs::rename(&making, &dir)?;
    sync_parent(&dir)?;
    let first = segment_path(&dir, 1);
    let segment = create_segment(&first)?;
    Ok(Open {
        handle: Arc::new(JournalHandle {
            id,
            dir,
            _lock: lock,
            segments: Mutex::new(vec![(1, first)]),
            appended: Default::default(),
            retired: Default::default(),
        }),
        segment,
        segment_len: 0,
        zeroed: 0,
        next_n: 1,
        prev: None,
    })
}
