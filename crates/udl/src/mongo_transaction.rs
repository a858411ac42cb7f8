//! `DataLayer::mongo_transaction`: MongoDB transactions (where the server has them) whose
//! repositories carry the same privacy layers as every other repository.

use std::future::Future;

use udl_core::{Entity, Repository, Result, StoreKind};
use udl_mongo::MongoTransaction;

use crate::DataLayer;

/// An open MongoDB transaction. Its repositories run every operation inside it, behind the
/// access policy, audit and field encryption (audit entries and change history are written
/// outside it, before each write is sent, so an aborted write is still on record). `nearest`
/// and `create_with_ttl` are refused inside it.
#[derive(Clone)]
pub struct MongoDataTransaction {
    tx: MongoTransaction,
    data: DataLayer,
}

impl MongoDataTransaction {
    /// The repository of `T` inside this transaction. `T` must live in MongoDB; an entity that
    /// declares a cache is refused, as writes here could leave it stale after the commit.
    pub fn repository<T: Entity>(&self) -> Result<Repository<T>> {
        self.data
            .transaction_repository(StoreKind::MONGO, self.tx.records())
    }
}

impl DataLayer {
    /// Runs `work` in one MongoDB transaction: commits when it returns `Ok`, aborts when it
    /// returns `Err` or panics (the panic then continues). `work` runs again after errors the
    /// server labels transient (a write conflict, an election), as MongoDB's drivers do, so it
    /// must be safe to repeat. `Unsupported` where the server has no transactions (FerretDB).
    pub async fn mongo_transaction<R, F, Fut>(&self, mut work: F) -> Result<R>
    where
        F: FnMut(MongoDataTransaction) -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        let data = self.clone();
        self.mongo()?
            .transaction(move |tx| {
                work(MongoDataTransaction {
                    tx,
                    data: data.clone(),
                })
            })
            .await
    }
}
