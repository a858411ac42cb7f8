//! The lightweight-transaction lock that keeps two processes from migrating one keyspace at
//! once. A lease: the row carries a TTL, so a crashed holder's lock disappears by itself.

use std::time::{Duration, Instant};

use scylla::value::{CqlValue, Row};
use udl_core::{Error, ErrorKind, Result, StoreKind};
use uuid::Uuid;

use crate::error::{classify, unexpected_shape};
use crate::store::ScyllaStore;

/// How long a holder may take before the lock expires.
const LEASE: Duration = Duration::from_secs(300);
/// How long a runner waits for the lock.
const WAIT: Duration = Duration::from_secs(120);

/// A held migration lock; release it when done.
pub struct MigrationLock {
    store: ScyllaStore,
    owner: Uuid,
}

impl MigrationLock {
    /// Takes the lock, waiting while another holder has it.
    pub async fn acquire(store: &ScyllaStore) -> Result<Self> {
        let owner = Uuid::new_v4();
        let insert = format!(
            "INSERT INTO \"{}\".udl_locks (name, owner) VALUES ('migrations', ?) IF NOT EXISTS USING TTL {}",
            store.keyspace(),
            LEASE.as_secs()
        );
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let result = store
                .session()
                .execute_unpaged(insert.as_str(), (owner,))
                .await
                .map_err(|e| classify(&e, "migrate lock"))?;
            if lwt_applied(result)? {
                return Ok(MigrationLock {
                    store: store.clone(),
                    owner,
                });
            }
            if started.elapsed() > WAIT {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "another process holds the migration lock",
                )
                .with_store(StoreKind::SCYLLA)
                .with_operation("migrate"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Releases the lock if it is still ours. A failed release expires with the lease.
    pub async fn release(self) {
        let delete = format!(
            "DELETE FROM \"{}\".udl_locks WHERE name = 'migrations' IF owner = ?",
            self.store.keyspace()
        );
        let _ = self
            .store
            .session()
            .execute_unpaged(delete.as_str(), (self.owner,))
            .await;
    }
}

/// The `[applied]` column every lightweight transaction answers with.
pub(crate) fn lwt_applied(result: scylla::response::query_result::QueryResult) -> Result<bool> {
    let malformed = || unexpected_shape("conditional write");
    let rows = result.into_rows_result().map_err(|_| malformed())?;
    let row: Row = rows.first_row().map_err(|_| malformed())?;
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
        _ => Err(malformed()),
    }
}
