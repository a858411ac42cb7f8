//! A MongoDB transaction's session as the record operations see it: every operation of a
//! transaction's records runs in its session; errors labelled `TransientTransactionError` are
//! noted so the whole transaction can be run again (as the drivers' convenient transaction API
//! does); changes to the in-process vector indexes wait for the commit, so an aborted
//! transaction leaves them as they were; and each call is bounded by the store's
//! `resilience.timeout`, since no resilience layer wraps a transaction's records and a server
//! that stops answering must not hold the caller.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use mongodb::bson::Bson;
use mongodb::ClientSession;
use udl_core::{EntityMeta, Record};

use crate::vector::VectorIndexes;

/// A change to a vector index, held until the transaction commits.
pub(crate) enum VectorChange {
    Upsert(&'static EntityMeta, Record),
    Remove(&'static EntityMeta, Bson),
}

/// One transaction's session and what it noticed along the way.
pub(crate) struct TxSession {
    pub session: tokio::sync::Mutex<ClientSession>,
    /// Longest one call inside the transaction may take.
    pub call_timeout: Duration,
    transient: AtomicBool,
    vector_changes: Mutex<Vec<VectorChange>>,
}

impl TxSession {
    pub fn new(session: ClientSession, call_timeout: Duration) -> Self {
        TxSession {
            session: tokio::sync::Mutex::new(session),
            call_timeout,
            transient: AtomicBool::new(false),
            vector_changes: Mutex::new(Vec::new()),
        }
    }

    /// Notes `err` if it says the whole transaction may succeed when run again.
    pub fn note(&self, err: &mongodb::error::Error) {
        if err.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR) {
            self.transient.store(true, Ordering::Release);
        }
    }

    /// Whether an operation failed with an error that asks for the transaction to be run again.
    pub fn saw_transient(&self) -> bool {
        self.transient.load(Ordering::Acquire)
    }

    /// Holds `change` until the commit.
    pub fn hold(&self, change: VectorChange) {
        self.vector_changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(change);
    }

    /// Applies the held changes to `indexes` (after the commit).
    pub fn apply(&self, indexes: &VectorIndexes) {
        let changes = std::mem::take(
            &mut *self
                .vector_changes
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for change in changes {
            match change {
                VectorChange::Upsert(entity, record) => indexes.upsert(entity, &record),
                VectorChange::Remove(entity, id) => indexes.remove(entity, &id),
            }
        }
    }
}

/// Runs the driver action `$action` on its own, or in `$records`' transaction session.
macro_rules! exec {
    ($records:expr, $action:expr) => {
        match &$records.session {
            Some(tx) => {
                let mut session = tx.session.lock().await;
                $crate::session::bounded(tx.call_timeout, $action.session(&mut *session)).await
            }
            None => $action.await,
        }
    };
}
pub(crate) use exec;

/// `call`, failed as timed out if it has not finished within `limit` (dropping it abandons the
/// call; the driver discards its connection).
pub(crate) async fn bounded<T>(
    limit: Duration,
    call: impl IntoFuture<Output = mongodb::error::Result<T>>,
) -> mongodb::error::Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(done) => done,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {limit:?}"),
        )
        .into()),
    }
}
