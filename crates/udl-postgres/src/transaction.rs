//! The handle a transaction closure receives.

use std::sync::Arc;

use udl_core::{Entity, RecordStore, Repository, Result};

use crate::records::PgRecords;

/// An open transaction. Repositories taken from it run every statement inside it.
#[derive(Clone)]
pub struct PgTransaction {
    records: Arc<PgRecords>,
}

impl PgTransaction {
    pub(crate) fn new(records: PgRecords) -> Self {
        PgTransaction {
            records: Arc::new(records),
        }
    }

    /// A typed repository of `T` inside this transaction.
    pub fn repository<T: Entity>(&self) -> Result<Repository<T>> {
        Repository::new(self.records())
    }

    /// The record-level store inside this transaction.
    pub fn records(&self) -> Arc<dyn RecordStore> {
        self.records.clone()
    }
}
