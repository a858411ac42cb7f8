//! `DataLayer::transaction`: PostgreSQL transactions whose repositories carry the same privacy
//! layers as every other repository.

use std::future::Future;

use udl_core::{Entity, Repository, Result, StoreKind};
use udl_postgres::PgTransaction;

use crate::DataLayer;

/// An open PostgreSQL transaction. Its repositories run every statement inside it, behind the
/// access policy, audit and field encryption (audit entries and change history are written
/// outside it, before each write is sent, so a rolled-back write is still on record).
#[derive(Clone)]
pub struct Transaction {
    pub(crate) tx: PgTransaction,
    pub(crate) data: DataLayer,
}

impl Transaction {
    /// The repository of `T` inside this transaction. `T` must live in PostgreSQL; an entity
    /// that declares a cache is refused, as writes here could leave it stale after the commit.
    pub fn repository<T: Entity>(&self) -> Result<Repository<T>> {
        self.data
            .transaction_repository(StoreKind::POSTGRES, self.tx.records())
    }
}

impl DataLayer {
    /// Runs `work` in one PostgreSQL transaction: commits when it returns `Ok`, rolls back when
    /// it returns `Err` or panics (the panic then continues).
    pub async fn transaction<R, F, Fut>(&self, work: F) -> Result<R>
    where
        F: FnOnce(Transaction) -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        let data = self.clone();
        self.postgres()?
            .transaction(move |tx| work(Transaction { tx, data }))
            .await
    }
}
