//! A fresh schema per test with the platform's migrations applied.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use udl_config::StoreConfig as _;
use udl_jobs::{JobRunner, ManualClock};
use udl_postgres::{PgStore, PostgresConfig};
use udl_testkit::servers;

/// Config for the local server in `schema`, with a small pool.
fn config(schema: &str) -> PostgresConfig {
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.to_owned()),
        ("UDL__POSTGRES__POOL__MIN", "0".to_owned()),
        ("UDL__POSTGRES__POOL__MAX", "4".to_owned()),
    ];
    PostgresConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid")
}

/// Config for another pool on `store`'s schema (another process's, in effect).
pub fn same_schema(store: &PgStore) -> PostgresConfig {
    config(store.schema())
}

/// A store on a fresh schema, migrated.
pub async fn migrated_store() -> PgStore {
    let config = config(&servers::unique_namespace("jobs"));
    let store = match PgStore::connect(&config).await {
        Ok(store) => store,
        Err(e) => servers::unreachable("PostgreSQL", &servers::postgres_url(), &e),
    };
    udl_postgres::models::migrator()
        .up(&store)
        .await
        .expect("migrations apply");
    store
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

/// A runner on `store` whose clock stands at `at`, and that clock.
pub fn runner_at(store: &PgStore, at: DateTime<Utc>) -> (JobRunner, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(at));
    (JobRunner::new(store.clone(), clock.clone()), clock)
}

/// Whether table `name` exists in the store's schema.
pub async fn table_exists(store: &PgStore, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass(quote_ident($1)) IS NOT NULL")
        .bind(name)
        .fetch_one(store.pool())
        .await
        .expect("look the table up")
}
