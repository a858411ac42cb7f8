//! Versioned CQL migrations: checksummed, recorded in `udl_migrations`, applied under a
//! lightweight-transaction lock, each statement followed by a wait for schema agreement.
//!
//! CQL has no transactional DDL, so a failed migration can leave some statements applied;
//! write them idempotently (`IF NOT EXISTS`) and `up` completes the migration once the cause
//! is fixed. Statements name tables as `{keyspace}.table`; the configured keyspace is put in.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use udl_core::{
    check_applied, in_version_order, known_migrations, statuses, AppliedMigration, Error,
    ErrorKind, MigrationReport, MigrationStatus, Result, StoreKind, VersionedMigration,
};

use crate::error::classify;
use crate::lock::MigrationLock;
use crate::store::ScyllaStore;

/// One migration: a version, a name and its CQL statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CqlMigration {
    /// Positive, unique, applied in ascending order.
    pub version: i64,
    /// Short name shown in status listings.
    pub name: Cow<'static, str>,
    /// Statements, applied in order; `{keyspace}` stands for the configured keyspace.
    pub statements: Vec<Cow<'static, str>>,
}

impl CqlMigration {
    /// A migration.
    pub fn new(
        version: i64,
        name: impl Into<Cow<'static, str>>,
        statements: Vec<Cow<'static, str>>,
    ) -> Self {
        CqlMigration {
            version,
            name: name.into(),
            statements,
        }
    }
}

impl VersionedMigration for CqlMigration {
    fn version(&self) -> i64 {
        self.version
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the statements as written (keyspace placeholder included), hex encoded.
    fn checksum(&self) -> String {
        let mut h = Sha256::new();
        for statement in &self.statements {
            h.update(statement.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }
}

fn fail(kind: ErrorKind, message: String) -> Error {
    Error::new(kind, message)
        .with_store(StoreKind::SCYLLA)
        .with_operation("migrate")
}

/// An ordered set of CQL migrations for one keyspace.
#[derive(Clone, Debug)]
pub struct ScyllaMigrator {
    migrations: Vec<CqlMigration>,
}

impl ScyllaMigrator {
    /// A migrator over `migrations`; versions must be positive and unique.
    pub fn new(migrations: Vec<CqlMigration>) -> Result<Self> {
        Ok(ScyllaMigrator {
            migrations: in_version_order(migrations, StoreKind::SCYLLA)?,
        })
    }

    /// Creates the keyspace (with the configured replication) and udl's bookkeeping tables
    /// if missing, then applies every pending migration while holding the lock, so
    /// concurrent runners wait and then find nothing left to do. Refuses to run when an
    /// applied migration was edited or is unknown to this build.
    pub async fn up(&self, store: &ScyllaStore) -> Result<MigrationReport> {
        prepare_keyspace(store).await?;
        let lock = MigrationLock::acquire(store).await?;
        let outcome = self.apply_locked(store).await;
        lock.release().await;
        outcome
    }

    async fn apply_locked(&self, store: &ScyllaStore) -> Result<MigrationReport> {
        let applied = read_applied(store).await?;
        check_applied(&known_migrations(&self.migrations), &applied)
            .map_err(|e| e.with_store(StoreKind::SCYLLA).with_operation("migrate"))?;
        let mut report = MigrationReport {
            applied: vec![],
            already_applied: applied.len(),
        };
        let record = format!(
            "INSERT INTO \"{}\".udl_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
            store.keyspace()
        );
        for m in self
            .migrations
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
        {
            for statement in &m.statements {
                let cql = statement.replace("{keyspace}", &format!("\"{}\"", store.keyspace()));
                run_ddl(store, &cql).await.map_err(|inner| {
                    fail(
                        inner.kind(),
                        format!(
                            "migration {} ({}) failed: {}",
                            m.version,
                            m.name,
                            inner.message()
                        ),
                    )
                })?;
            }
            store
                .session()
                .execute_unpaged(
                    record.as_str(),
                    (m.version, m.name.as_ref(), m.checksum(), Utc::now()),
                )
                .await
                .map_err(|e| classify(&e, "migrate"))?;
            report.applied.push(m.version);
        }
        Ok(report)
    }

    /// Every migration known here or applied there, with its state.
    pub async fn status(&self, store: &ScyllaStore) -> Result<Vec<MigrationStatus>> {
        let applied = read_applied(store).await?;
        Ok(statuses(&known_migrations(&self.migrations), &applied))
    }
}

/// How long one schema statement may take: a durable schema change is written and flushed on
/// every node, far slower than the data calls `scylla.request_timeout` is meant for.
const DDL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs one schema statement and waits until every node agrees on the new schema.
async fn run_ddl(store: &ScyllaStore, cql: &str) -> Result<()> {
    let session = store.session().get_session();
    let mut statement = scylla::statement::unprepared::Statement::new(cql);
    statement.set_request_timeout(Some(DDL_TIMEOUT));
    session
        .query_unpaged(statement, ())
        .await
        .map_err(|e| classify(&e, "migrate"))?;
    session.await_schema_agreement().await.map_err(|_| {
        fail(
            ErrorKind::Unavailable,
            "nodes did not agree on the schema in time".into(),
        )
    })?;
    Ok(())
}

async fn prepare_keyspace(store: &ScyllaStore) -> Result<()> {
    let ks = store.keyspace();
    run_ddl(store, &store.create_keyspace_cql()).await?;
    run_ddl(
        store,
        &format!(
            "CREATE TABLE IF NOT EXISTS \"{ks}\".udl_locks (name text PRIMARY KEY, owner uuid)"
        ),
    )
    .await?;
    run_ddl(
        store,
        &format!(
            "CREATE TABLE IF NOT EXISTS \"{ks}\".udl_migrations (version bigint PRIMARY KEY, \
             name text, checksum text, applied_at timestamp)"
        ),
    )
    .await
}

async fn read_applied(store: &ScyllaStore) -> Result<Vec<AppliedMigration>> {
    let select = format!(
        "SELECT version, name, checksum, applied_at FROM \"{}\".udl_migrations",
        store.keyspace()
    );
    let result = match store.session().execute_unpaged(select.as_str(), ()).await {
        Ok(result) => result,
        // No keyspace or table yet: nothing applied.
        Err(e) if classify(&e, "migrate").kind() == ErrorKind::InvalidInput => return Ok(vec![]),
        Err(e) => return Err(classify(&e, "migrate")),
    };
    let malformed = || {
        fail(
            ErrorKind::DataCorruption,
            "udl_migrations holds a malformed record".into(),
        )
    };
    let rows = result.into_rows_result().map_err(|_| malformed())?;
    let mut applied: Vec<AppliedMigration> = rows
        .rows::<(i64, String, String, DateTime<Utc>)>()
        .map_err(|_| malformed())?
        .map(|row| {
            row.map(|(version, name, checksum, at)| AppliedMigration {
                version,
                name,
                checksum,
                at,
            })
            .map_err(|_| malformed())
        })
        .collect::<Result<_>>()?;
    applied.sort_by_key(|a| a.version);
    Ok(applied)
}
