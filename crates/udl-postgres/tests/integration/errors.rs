//! Driver errors classified on the real server: kind, temporariness, no values in messages.

use crate::common;

use std::time::Duration;

use udl_config::StoreConfig as _;
use udl_core::{AccessContext, ErrorKind, Purpose, Role};
use udl_postgres::{classify, PgStore, PostgresConfig};
use udl_testkit::fixtures::{note, Note};
use udl_testkit::servers;

fn ctx() -> AccessContext {
    AccessContext::new("errors-test", Role::Service, Purpose::Operations).unwrap()
}

fn config_with(extra: &[(&str, &str)]) -> udl_postgres::PostgresConfig {
    let mut vars = vec![("UDL__POSTGRES__URL".to_owned(), servers::postgres_url())];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    PostgresConfig::from_sources(None, vars).unwrap()
}

#[tokio::test]
async fn refused_connection_is_temporary_unavailable() {
    let config = PostgresConfig::from_sources(
        None,
        [(
            "UDL__POSTGRES__URL".to_owned(),
            "postgres://postgres:fake-password@127.0.0.1:1/udl".to_owned(),
        )],
    )
    .unwrap();
    let err = PgStore::connect(&config)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(!format!("{err} {err:?}").contains("fake-password"));
}

#[tokio::test]
async fn statement_timeout_is_temporary_timeout() {
    let store = PgStore::connect(&config_with(&[(
        "UDL__POSTGRES__STATEMENT_TIMEOUT",
        "100ms",
    )]))
    .await
    .unwrap();
    let e = sqlx::query("SELECT pg_sleep(2)")
        .execute(store.pool())
        .await
        .unwrap_err();
    let err = classify(&e, "sleep");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    assert!(err.to_string().contains("57014"), "{err}");
}

#[tokio::test]
async fn exhausted_pool_is_temporary_timeout() {
    let h = common::PgHarness::new().await;
    let schema = h.store.schema().to_owned();
    let tight = PgStore::connect(&config_with(&[
        ("UDL__POSTGRES__SCHEMA", &schema),
        ("UDL__POSTGRES__POOL__MIN", "0"),
        ("UDL__POSTGRES__POOL__MAX", "1"),
        ("UDL__POSTGRES__POOL__ACQUIRE_TIMEOUT", "200ms"),
    ]))
    .await
    .unwrap();
    let held = tight.pool().acquire().await.unwrap();
    let notes = tight.repository::<Note>().unwrap();
    let started = std::time::Instant::now();
    let err = notes.get(&ctx(), &uuid::Uuid::nil()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails fast, does not hang"
    );
    drop(held);
    assert!(
        notes
            .get(&ctx(), &uuid::Uuid::nil())
            .await
            .unwrap()
            .is_none(),
        "recovers once free"
    );
    udl_testkit::Harness::teardown(h).await;
}

#[tokio::test]
async fn constraint_errors_name_the_constraint_not_the_value() {
    let h = common::PgHarness::with(vec![
        udl_postgres::Migration::new(1, "notes", common::NOTES_DDL),
        udl_postgres::Migration::new(
            2,
            "unique_title",
            "ALTER TABLE conformance_notes ADD CONSTRAINT notes_title_unique UNIQUE (title);
             ALTER TABLE conformance_notes ADD CONSTRAINT notes_rank_positive CHECK (rank >= 0)",
        ),
    ])
    .await;
    let notes = h.store.repository::<Note>().unwrap();
    let mut a = note(1);
    a.title = "fake-secret-title".into();
    notes.create(&ctx(), a.clone()).await.unwrap();
    let mut b = note(2);
    b.title = a.title.clone();
    let err = notes.create(&ctx(), b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("notes_title_unique") && shown.contains("23505"),
        "{shown}"
    );
    assert!(!shown.contains("fake-secret-title"), "{shown}");

    let mut c = note(3);
    c.rank = -5;
    let err = notes.create(&ctx(), c).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!err.is_temporary());
    udl_testkit::Harness::teardown(h).await;
}

#[tokio::test]
async fn health_round_trips() {
    let h = common::PgHarness::new().await;
    let health = h
        .store
        .health(Duration::from_secs(2))
        .await
        .expect("healthy");
    assert!(health.pool_size >= 1);
    udl_testkit::Harness::teardown(h).await;
}
