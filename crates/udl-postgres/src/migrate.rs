//! Versioned SQL migrations: ordered, checksummed, applied under an advisory lock.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use udl_core::{
    check_applied, in_version_order, known_migrations, statuses, AppliedMigration, Error,
    ErrorKind, MigrationReport, MigrationStatus, Result, StoreKind, VersionedMigration,
};

use crate::error::classify;
use crate::sql::ident;
use crate::store::PgStore;

/// One migration: a version, a name and the SQL that applies it (may hold many statements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Positive, unique, applied in ascending order.
    pub version: i64,
    /// Short name shown in status listings.
    pub name: Cow<'static, str>,
    /// The SQL, run in one transaction.
    pub sql: Cow<'static, str>,
}

impl Migration {
    /// A migration.
    pub fn new(
        version: i64,
        name: impl Into<Cow<'static, str>>,
        sql: impl Into<Cow<'static, str>>,
    ) -> Self {
        Migration {
            version,
            name: name.into(),
            sql: sql.into(),
        }
    }
}

impl VersionedMigration for Migration {
    fn version(&self) -> i64 {
        self.version
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the SQL, hex encoded.
    fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// An ordered set of migrations for one schema.
#[derive(Clone, Debug)]
pub struct Migrator {
    migrations: Vec<Migration>,
}

const TABLE: &str = "udl_migrations";

fn fail(kind: ErrorKind, message: String) -> Error {
    Error::new(kind, message)
        .with_store(StoreKind::POSTGRES)
        .with_operation("migrate")
}

impl Migrator {
    /// A migrator over `migrations`; versions must be positive and unique.
    pub fn new(migrations: Vec<Migration>) -> Result<Self> {
        Ok(Migrator {
            migrations: in_version_order(migrations, StoreKind::POSTGRES)?,
        })
    }

    /// The migrations, in order.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Applies every pending migration, each in its own transaction, while holding an
    /// advisory lock so concurrent runners wait and then find nothing left to do. Refuses
    /// to run when an applied migration was edited or is unknown to this build.
    pub async fn up(&self, store: &PgStore) -> Result<MigrationReport> {
        let mut conn = dedicated_connection(store).await?;
        let key = lock_key(store.schema());
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut conn)
            .await
            .map_err(|e| classify(&e, "migrate"))?;
        let outcome = self.apply_locked(&mut conn, store.schema()).await;
        // Closing the session releases the lock even if the unlock below fails.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        outcome
    }

    async fn apply_locked(&self, conn: &mut PgConnection, schema: &str) -> Result<MigrationReport> {
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE IF NOT EXISTS {table} (\
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), duration_ms BIGINT NOT NULL)",
            schema = ident(schema),
            table = ident(TABLE)
        );
        // Identifiers only: the schema name is validated at config load and quoted.
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(&mut *conn)
            .await
            .map_err(|e| classify(&e, "migrate"))?;
        let applied = read_applied(conn).await?;
        check_applied(&known_migrations(&self.migrations), &applied)
            .map_err(|e| e.with_store(StoreKind::POSTGRES).with_operation("migrate"))?;
        let mut report = MigrationReport {
            applied: vec![],
            already_applied: applied.len(),
        };
        for m in self
            .migrations
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
        {
            apply_one(conn, m).await?;
            tracing::info!(version = m.version, name = %m.name, "migration applied");
            report.applied.push(m.version);
        }
        Ok(report)
    }

    /// Every migration known here or applied there, with its state.
    pub async fn status(&self, store: &PgStore) -> Result<Vec<MigrationStatus>> {
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(|e| classify(&e, "migrate status"))?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("{}.{}", ident(store.schema()), TABLE))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| classify(&e, "migrate status"))?;
        let applied = if exists {
            read_applied(&mut conn).await?
        } else {
            vec![]
        };
        Ok(statuses(&known_migrations(&self.migrations), &applied))
    }
}

/// A connection taken out of the pool for good, so the session-level lock dies with it.
async fn dedicated_connection(store: &PgStore) -> Result<PgConnection> {
    let conn = store
        .pool()
        .acquire()
        .await
        .map_err(|e| classify(&e, "migrate"))?;
    Ok(conn.detach())
}

/// Advisory-lock key of a schema, so migrations of different schemas do not wait on each other.
fn lock_key(schema: &str) -> i64 {
    let digest = Sha256::digest(format!("udl-migrations/{schema}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

async fn read_applied(conn: &mut PgConnection) -> Result<Vec<AppliedMigration>> {
    let rows = sqlx::query(
        "SELECT version, name, checksum, applied_at FROM udl_migrations ORDER BY version",
    )
    .fetch_all(conn)
    .await
    .map_err(|e| classify(&e, "migrate"))?;
    rows.iter()
        .map(|r| {
            Ok(AppliedMigration {
                version: r.try_get(0)?,
                name: r.try_get(1)?,
                checksum: r.try_get(2)?,
                at: r.try_get(3)?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(|e| classify(&e, "migrate"))
}

async fn apply_one(conn: &mut PgConnection, m: &Migration) -> Result<()> {
    let started = std::time::Instant::now();
    let failed = |e: sqlx::Error| {
        let inner = classify(&e, "migrate");
        fail(
            inner.kind(),
            format!(
                "migration {} ({}) failed: {}",
                m.version,
                m.name,
                inner.message()
            ),
        )
    };
    let mut tx = conn.begin().await.map_err(failed)?;
    // Migration SQL is part of the build (or written by the operator), never user input.
    sqlx::raw_sql(AssertSqlSafe(m.sql.to_string()))
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    sqlx::query(
        "INSERT INTO udl_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(m.version)
    .bind(m.name.as_ref())
    .bind(m.checksum())
    .bind(started.elapsed().as_millis() as i64)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)
}
