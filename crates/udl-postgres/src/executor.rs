//! Where statements run: a pooled connection, or the connection of an open transaction.
//! One record implementation serves both, so transactions get the whole repository.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::error::classify;

/// An open transaction; `None` once committed or rolled back.
pub type SharedTx = Arc<Mutex<Option<Transaction<'static, Postgres>>>>;

/// Source of connections for statements.
#[derive(Clone)]
pub enum Executor {
    /// Each statement borrows a connection from the pool.
    Pool(PgPool),
    /// Every statement runs on the transaction's connection, one at a time.
    Tx(SharedTx),
}

/// A connection borrowed for one operation.
pub enum Conn {
    Pooled(PoolConnection<Postgres>),
    Tx(
        OwnedMappedMutexGuard<
            Option<Transaction<'static, Postgres>>,
            Transaction<'static, Postgres>,
        >,
    ),
}

impl Executor {
    /// Borrows a connection for `operation`.
    pub async fn conn(&self, operation: &'static str) -> Result<Conn> {
        match self {
            Executor::Pool(pool) => pool
                .acquire()
                .await
                .map(Conn::Pooled)
                .map_err(|e| classify(&e, operation)),
            Executor::Tx(tx) => {
                let guard: OwnedMutexGuard<_> = Arc::clone(tx).lock_owned().await;
                OwnedMutexGuard::try_map(guard, Option::as_mut)
                    .map(Conn::Tx)
                    .map_err(|_| {
                        Error::new(ErrorKind::InvalidInput, "transaction already finished")
                            .with_store(StoreKind::POSTGRES)
                            .with_operation(operation)
                    })
            }
        }
    }
}

impl Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Tx(t) => t,
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Tx(t) => t,
        }
    }
}
