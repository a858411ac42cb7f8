//! The handle a transaction closure receives.

use std::sync::Arc;

use udl_core::{Entity, RecordStore, Repository, Result};

use crate::error::classify;

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

    /// Writes a logical decoding message into the WAL as part of this transaction
    /// (`pg_logical_emit_message`): committed or discarded with it, and read by logical
    /// decoding in commit order. Needs `wal_level = logical`.
    pub async fn emit_logical_message(&self, prefix: &str, content: &str) -> Result<()> {
        let mut conn = self.records.exec.conn("emit").await?;
        sqlx::query("SELECT pg_logical_emit_message(true, $1, $2)")
            .bind(prefix)
            .bind(content)
            .execute(&mut *conn)
            .await
            .map_err(|e| classify(&e, "emit"))?;
        Ok(())
    }
}
