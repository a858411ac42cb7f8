//! The lock document that keeps two processes from migrating one database at once.
//!
//! A lease, not a session lock: a crashed holder's lock expires after `LEASE`, and the next
//! runner takes it over. Waiting polls with a growing pause because MongoDB offers no way to
//! be notified when a document disappears.

use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::{Collection, Database};
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::error::{classify, DUPLICATE_KEY};

const LOCKS: &str = "udl_locks";
const LOCK_ID: &str = "migrations";
/// How long a holder may take before others may take the lock over.
const LEASE: Duration = Duration::from_secs(300);
/// How long a runner waits for the lock.
const WAIT: Duration = Duration::from_secs(120);

/// A held migration lock; release it when done.
pub struct MigrationLock {
    locks: Collection<Document>,
    owner: String,
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind as K, WriteFailure};
    matches!(e.kind.as_ref(), K::Write(WriteFailure::WriteError(w)) if w.code == DUPLICATE_KEY)
}

impl MigrationLock {
    /// Takes the lock, waiting while another live holder has it.
    pub async fn acquire(db: &Database) -> Result<Self> {
        let locks = db.collection::<Document>(LOCKS);
        let owner = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let now = mongodb::bson::DateTime::now();
            let expires = mongodb::bson::DateTime::from_millis(
                now.timestamp_millis() + LEASE.as_millis() as i64,
            );
            match locks
                .insert_one(doc! { "_id": LOCK_ID, "owner": &owner, "expires_at": expires })
                .await
            {
                Ok(_) => return Ok(MigrationLock { locks, owner }),
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(classify(&e, "migrate lock")),
            }
            let taken_over = locks
                .find_one_and_update(
                    doc! { "_id": LOCK_ID, "expires_at": { "$lt": now } },
                    doc! { "$set": { "owner": &owner, "expires_at": expires } },
                )
                .await
                .map_err(|e| classify(&e, "migrate lock"))?;
            if taken_over.is_some() {
                return Ok(MigrationLock { locks, owner });
            }
            if started.elapsed() > WAIT {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "another process holds the migration lock",
                )
                .with_store(StoreKind::MONGO)
                .with_operation("migrate"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Releases the lock (only if still ours). A failed release expires with the lease.
    pub async fn release(self) {
        let _ = self
            .locks
            .delete_one(doc! { "_id": LOCK_ID, "owner": &self.owner })
            .await;
    }
}
