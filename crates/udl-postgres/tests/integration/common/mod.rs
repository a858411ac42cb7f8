//! A PostgreSQL harness: one fresh schema per test, dropped afterwards.

use udl_config::StoreConfig as _;
use udl_postgres::PostgresConfig;
use udl_postgres::{Migration, Migrator, PgStore};
use udl_testkit::{servers, Harness, Subject};

/// Table of the conformance suite's `Note`.
pub use udl_testkit::fixtures::NOTES_POSTGRES_DDL as NOTES_DDL;

pub struct PgHarness {
    pub store: PgStore,
}

/// Config for the local server, in `schema`, with a small pool.
pub fn config(schema: &str) -> PostgresConfig {
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.to_owned()),
        ("UDL__POSTGRES__POOL__MIN", "0".to_owned()),
        ("UDL__POSTGRES__POOL__MAX", "4".to_owned()),
    ];
    PostgresConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid")
}

/// A store connected to a fresh, empty schema (not yet created).
pub async fn fresh_store() -> PgStore {
    let config = config(&servers::unique_namespace("t"));
    match PgStore::connect(&config).await {
        Ok(store) => store,
        Err(e) => servers::unreachable("PostgreSQL", &servers::postgres_url(), &e),
    }
}

/// Drops the store's schema and closes its pool.
pub async fn drop_schema(store: &PgStore) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", store.schema());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(store.pool())
        .await
        .expect("drop test schema");
    store.pool().close().await;
}

impl PgHarness {
    /// A fresh schema holding the conformance table.
    pub async fn new() -> Self {
        Self::with(vec![Migration::new(1, "conformance_notes", NOTES_DDL)]).await
    }

    /// A fresh schema with `migrations` applied.
    pub async fn with(migrations: Vec<Migration>) -> Self {
        let store = fresh_store().await;
        Migrator::new(migrations)
            .expect("valid migrations")
            .up(&store)
            .await
            .expect("migrations apply");
        PgHarness { store }
    }
}

impl Harness for PgHarness {
    fn subject(&self) -> Subject {
        Subject {
            store: self.store.records(),
            refuses_nul_in_text: true,
        }
    }

    async fn teardown(self) {
        drop_schema(&self.store).await;
    }
}
