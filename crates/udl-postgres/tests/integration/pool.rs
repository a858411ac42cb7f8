//! The pool follows demand within min–max on the real server: a burst of slow queries grows
//! it, idle connections shrink it back to min, and each resize shows in the metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use udl_config::StoreConfig as _;
use udl_metrics::Metrics;
use udl_postgres::PgStore;
use udl_postgres::PostgresConfig;
use udl_testkit::servers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_grows_the_pool_and_idleness_shrinks_it_back_to_min() {
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__POOL__MIN", "1".to_owned()),
        ("UDL__POSTGRES__POOL__MAX", "8".to_owned()),
        ("UDL__POSTGRES__POOL__IDLE_TIMEOUT", "1s".to_owned()),
    ];
    let config = PostgresConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    let store = match PgStore::connect(&config).await {
        Ok(store) => store,
        Err(e) => servers::unreachable("PostgreSQL", &servers::postgres_url(), &e),
    };
    let metrics = Arc::new(Metrics::new());
    let watcher = store.watch_pool(Arc::clone(&metrics), Duration::from_millis(50));

    let burst: Vec<_> = (0..8)
        .map(|_| {
            let pool = store.pool().clone();
            tokio::spawn(async move {
                sqlx::query("SELECT pg_sleep(0.5)")
                    .execute(&pool)
                    .await
                    .unwrap();
            })
        })
        .collect();
    let mut peak = 0;
    while !burst.iter().all(|task| task.is_finished()) {
        peak = peak.max(store.pool_figures().open);
        tokio::task::yield_now().await;
    }
    assert!(
        peak >= 4,
        "eight slow queries at once grew the pool to {peak}"
    );
    assert!(peak <= 8, "never past max: {peak}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while store.pool_figures().open > 1 {
        assert!(
            Instant::now() < deadline,
            "idle connections were never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.pool_figures().min, 1);
    // The watcher samples every 50 ms: wait for it to see the pool at min.
    let at_min = r#"udl_pool_connections{store="postgres",state="open"} 1"#;
    while !metrics.render().contains(at_min) {
        assert!(Instant::now() < deadline, "{}", metrics.render());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = metrics.render();
    assert!(
        text.contains(r#"udl_pool_resizes_total{store="postgres",state="grew"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"udl_pool_resizes_total{store="postgres",state="shrank"}"#),
        "{text}"
    );
    store.pool().close().await;
    watcher.await.unwrap();
}
