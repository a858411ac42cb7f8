//! The audit writer: makes access-log entries durable, with group commit. Callers wait until
//! their entry is durable; entries that arrive while a commit is in flight go together in the
//! next one. Where an entry is durable depends on the set-up: with a local journal
//! ([`AuditWriter::journaled`]) once it is synced there (a shipper moves it into PostgreSQL
//! moments later); without one ([`AuditWriter::start`]) once its batch is committed in
//! PostgreSQL, which costs every batch a round trip and a WAL flush.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_postgres::models::PhiAccessLogEntry;
use udl_postgres::PgStore;

use super::chain::Chain;
use super::journal::{self, GroupJournal, JournalConfig, Lags, Refusal, ShipQueue};

/// Most entries committed in one PostgreSQL transaction without a journal.
const MAX_BATCH: usize = 1024;
/// Entries waiting to be made durable before new ones wait for room.
const QUEUE: usize = 16 * 1024;

/// Makes access-log entries durable, in batches.
pub struct AuditWriter {
    durable: Durable,
    timeout: Duration,
    /// With a local journal: what waits to ship, and how long shipping took.
    shipping: Option<(Arc<ShipQueue>, Arc<Lags>)>,
}

/// The error of a PHI access refused because a safeguard could not act: `cause`, then the
/// kind of the failure behind it.
pub(crate) fn phi_refused(cause: &str, operation: &'static str, kind: ErrorKind) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("{cause} ({}), so the PHI access was refused", kind.name()),
    )
    .with_store(StoreKind::POSTGRES)
    .with_operation(operation)
    .temporary(true)
}

/// Where entries are made durable.
enum Durable {
    /// Committed in PostgreSQL by the task [`commit_directly`] runs in.
    InPostgres(mpsc::Sender<Pending>),
    /// Synced to the local journal by the accesses themselves.
    InJournal(Arc<GroupJournal>),
}

/// An entry and the access waiting for it to be committed.
struct Pending {
    entry: PhiAccessLogEntry,
    done: oneshot::Sender<Result<(), Refusal>>,
}

fn unrecorded(kind: ErrorKind) -> Refusal {
    Refusal {
        cause: "the access could not be recorded in the PHI audit log",
        kind,
    }
}

impl AuditWriter {
    /// A writer committing each batch in `pg`'s `phi_access_log` before its accesses go
    /// ahead; an entry not durable within `timeout` fails. Runs until every handle is dropped.
    pub fn start(pg: PgStore, timeout: Duration) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(commit_directly(Chain::new(pg), pending, timeout));
        AuditWriter {
            durable: Durable::InPostgres(queue),
            timeout,
            shipping: None,
        }
    }

    /// A writer syncing each batch to a journal of this process's own under `journal.dir`
    /// before its accesses go ahead, and shipping the entries to `pg`'s `phi_access_log`
    /// (after what journals of earlier processes left unshipped); an entry not durable within
    /// `timeout` fails. Runs until it is dropped. A directory that cannot be written refuses
    /// PHI accesses, not the start.
    pub fn journaled(pg: PgStore, timeout: Duration, journal: JournalConfig) -> Self {
        let ship_queue = Arc::new(ShipQueue::default());
        let lags = Arc::new(Lags::default());
        let root = journal.dir.clone();
        let durable = Durable::InJournal(Arc::new(GroupJournal::new(
            journal,
            Arc::clone(&ship_queue),
        )));
        tokio::spawn(journal::ship(
            Chain::new(pg),
            root,
            Arc::clone(&ship_queue),
            Arc::clone(&lags),
            timeout,
        ));
        AuditWriter {
            durable,
            timeout,
            shipping: Some((ship_queue, lags)),
        }
    }

    /// Reports the journal's backlog (`udl_audit_unshipped`) and shipping lag
    /// (`udl_audit_ship_lag_seconds`) to `metrics` from now on; nothing without a journal.
    pub fn reporting_to(self, metrics: Arc<udl_metrics::Metrics>) -> Self {
        if let Some((_, lags)) = &self.shipping {
            let _ = lags.metrics.set(metrics);
        }
        self
    }

    /// Appends `entry` (its `seq` and hashes are assigned here) and returns once it is
    /// durable; an error means it was not, and the access must not go ahead.
    pub async fn append(&self, entry: PhiAccessLogEntry) -> Result<()> {
        let appended = async {
            match &self.durable {
                Durable::InJournal(journal) => journal.append(entry).await,
                Durable::InPostgres(queue) => {
                    let (done, durable) = oneshot::channel();
                    queue
                        .send(Pending { entry, done })
                        .await
                        .map_err(|_| unrecorded(ErrorKind::Unavailable))?;
                    durable
                        .await
                        .map_err(|_| unrecorded(ErrorKind::Unavailable))?
                }
            }
        };
        tokio::time::timeout(self.timeout, appended)
            .await
            .unwrap_or(Err(unrecorded(ErrorKind::Timeout)))
            .map_err(|refusal| phi_refused(refusal.cause, "audit", refusal.kind))
    }

    /// Entries durable in the local journal that have not reached PostgreSQL yet (0 without a
    /// journal: there every entry is durable only once it has).
    pub fn unshipped(&self) -> usize {
        self.shipping.as_ref().map_or(0, |(queue, _)| queue.len())
    }

    /// Waits until every entry durable now has reached PostgreSQL, or `grace` passed; how many
    /// have not (they stay in the journal and ship when a process next starts on it).
    pub async fn flush(&self, grace: Duration) -> usize {
        match &self.shipping {
            Some((queue, _)) => queue.drained(grace).await,
            None => 0,
        }
    }

    /// The `q` quantile (0..=1) of how long recently shipped entries took from their sync to
    /// their commit in PostgreSQL; `None` without a journal or before anything shipped.
    pub fn shipping_lag(&self, q: f64) -> Option<Duration> {
        self.shipping.as_ref()?.1.quantile(q)
    }
}

/// Without a journal: commits each batch in PostgreSQL before answering its waiters.
async fn commit_directly(
    mut chain: Chain,
    mut pending: mpsc::Receiver<Pending>,
    timeout: Duration,
) {
    while let Some(first) = pending.recv().await {
        let (entries, waiters) = gather(first, &mut pending);
        let outcome = match tokio::time::timeout(timeout, chain.append(&entries, None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, count = waiters.len(), "PHI audit entries not recorded");
                Err(unrecorded(e.kind()))
            }
            Err(_) => {
                tracing::error!(count = waiters.len(), "PHI audit append timed out");
                Err(unrecorded(ErrorKind::Timeout))
            }
        };
        if outcome.is_err() {
            chain.reset();
        }
        for waiter in waiters {
            // A waiter that gave up has already failed its access.
            let _ = waiter.send(outcome);
        }
    }
    // Every handle is gone: say goodbye, so the server does not log a lost client.
    chain.close().await;
}

/// A batch: `first` and whatever else is waiting, up to [`MAX_BATCH`] entries; the entries, and
/// the accesses waiting for them, in order.
fn gather(
    first: Pending,
    pending: &mut mpsc::Receiver<Pending>,
) -> (
    Vec<PhiAccessLogEntry>,
    Vec<oneshot::Sender<Result<(), Refusal>>>,
) {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match pending.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    batch.into_iter().map(|p| (p.entry, p.done)).unzip()
}
