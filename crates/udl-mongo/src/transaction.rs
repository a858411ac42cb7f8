//! Multi-document transactions, where the server has them (a replica set or sharded cluster):
//! `work` runs with records whose every operation is inside one transaction; `Ok` commits,
//! `Err` or a panic aborts. As the MongoDB drivers' convenient transaction API does, the whole
//! of `work` runs again while it fails with an error labelled `TransientTransactionError`
//! (a write conflict, a primary that stepped down), and a commit whose outcome is unknown is
//! retried, both within [`RETRY_FOR`]. Every call, the commit and the abort included, is bounded
//! by the store's `resilience.timeout`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use mongodb::bson::doc;
use mongodb::error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::ClientSession;
use tokio::sync::MutexGuard;
use udl_core::{Capability, Entity, Error, RecordStore, Repository, Result, StoreKind};

use crate::error::classify;
use crate::records::MongoRecords;
use crate::session::{bounded, TxSession};
use crate::MongoStore;

/// How long a transaction is run again after transient errors (the drivers' own bound).
const RETRY_FOR: Duration = Duration::from_secs(120);
/// How long the session of an abort the server did not answer in time is tried to be killed.
const ABANDONED_ABORT_FOR: Duration = Duration::from_secs(60);

/// An open MongoDB transaction: its records run every operation inside it.
#[derive(Clone)]
pub struct MongoTransaction {
    records: Arc<MongoRecords>,
}

impl MongoTransaction {
    /// The record store inside this transaction, for layers that wrap any backend.
    pub fn records(&self) -> Arc<dyn RecordStore> {
        self.records.clone()
    }

    /// A repository of `T` inside this transaction, with no access policy and no audit: for
    /// entities without PII or PHI (the data layer's transactions add those layers).
    pub fn unaudited_repository<T: Entity>(&self) -> Result<Repository<T>> {
        Repository::new(self.records())
    }
}

impl MongoStore {
    /// Runs `work` in one transaction: commits when it returns `Ok`, aborts when it returns
    /// `Err` or panics (the panic then continues); runs it again after transient transaction
    /// errors. `Unsupported` on a server without transactions (FerretDB, a standalone server).
    pub async fn transaction<R, F, Fut>(&self, mut work: F) -> Result<R>
    where
        F: FnMut(MongoTransaction) -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        if !self
            .records_inner()
            .capabilities()
            .supports(Capability::Transactions)
        {
            return Err(Error::unsupported(StoreKind::MONGO, "transaction"));
        }
        let started = Instant::now();
        let limit = self.transaction_call_timeout();
        loop {
            let client = self.database().client();
            let mut session = bounded(limit, client.start_session())
                .await
                .map_err(|e| classify(&e, "transaction"))?;
            bounded(limit, session.start_transaction())
                .await
                .map_err(|e| classify(&e, "transaction"))?;
            let tx = Arc::new(TxSession::new(session, limit));
            let records = Arc::new(self.records_inner().in_transaction(Arc::clone(&tx)));
            let outcome = AssertUnwindSafe(work(MongoTransaction {
                records: Arc::clone(&records),
            }))
            .catch_unwind()
            .await;
            let mut session = tx.session.lock().await;
            match outcome {
                Ok(Ok(value)) => loop {
                    match bounded(limit, session.commit_transaction()).await {
                        Ok(()) => {
                            drop(session);
                            tx.apply(self.records_inner().vectors());
                            return Ok(value);
                        }
                        Err(e)
                            if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                                && started.elapsed() < RETRY_FOR =>
                        {
                            continue
                        }
                        Err(e)
                            if e.contains_label(TRANSIENT_TRANSACTION_ERROR)
                                && started.elapsed() < RETRY_FOR =>
                        {
                            break
                        }
                        Err(e) => return Err(classify(&e, "commit")),
                    }
                },
                Ok(Err(e)) => {
                    // The caller's error matters more than a failed abort.
                    abort(&tx, session, limit).await;
                    if !(tx.saw_transient() && started.elapsed() < RETRY_FOR) {
                        return Err(e);
                    }
                }
                Err(panic) => {
                    abort(&tx, session, limit).await;
                    std::panic::resume_unwind(panic)
                }
            }
        }
    }
}

/// Aborts the transaction of `tx` (whose `session` is held). When the server does not answer
/// within `limit`, the session is killed in the background (`killSessions`, for up to
/// [`ABANDONED_ABORT_FOR`]), so the transaction's locks are released once the server answers
/// again rather than when its transaction lifetime (60 s by default) runs out. A fresh command
/// is needed: the abort that timed out may never have reached the server, and the session
/// counts it as done. The task holds the session until then, so the driver cannot hand the
/// same server session to another operation that the kill would interrupt.
async fn abort(tx: &Arc<TxSession>, mut session: MutexGuard<'_, ClientSession>, limit: Duration) {
    if bounded(limit, session.abort_transaction()).await.is_ok() {
        return;
    }
    let lsid = session.id().clone();
    let admin = session.client().database("admin");
    drop(session);
    let held = Arc::clone(tx);
    tokio::spawn(async move {
        let kill = admin.run_command(doc! { "killSessions": [lsid] });
        let _ = tokio::time::timeout(ABANDONED_ABORT_FOR, kill).await;
        drop(held);
    });
}
