//! TLS through rustls when the URL asks for it (the local server has a self-signed
//! certificate, so `sslmode=require`: encrypted, certificate not verified).

use udl_config::StoreConfig as _;
use udl_postgres::PgStore;
use udl_postgres::PostgresConfig;
use udl_testkit::servers;

async fn connection_uses_tls(sslmode: &str) -> bool {
    let base = servers::postgres_url();
    let without_query = base.split('?').next().unwrap_or(&base);
    let url = format!("{without_query}?sslmode={sslmode}");
    let config =
        PostgresConfig::from_sources(None, [("UDL__POSTGRES__URL".to_owned(), url)]).unwrap();
    let store = match PgStore::connect(&config).await {
        Ok(store) => store,
        Err(e) => servers::unreachable("PostgreSQL", &base, &e),
    };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    ssl
}

#[tokio::test]
async fn sslmode_require_encrypts_the_connection() {
    assert!(
        connection_uses_tls("require").await,
        "sslmode=require must give a TLS session"
    );
}

#[tokio::test]
async fn sslmode_disable_stays_plain() {
    assert!(!connection_uses_tls("disable").await);
}
