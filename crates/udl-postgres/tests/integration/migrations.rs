//! Versioned migrations on the real server: idempotence, checksums, locking, status.

use crate::common;

use udl_core::ErrorKind;
use udl_postgres::{models, Migration, MigrationState, Migrator};

fn two_migrations() -> Vec<Migration> {
    vec![
        Migration::new(1, "widgets", "CREATE TABLE widgets (id BIGINT PRIMARY KEY)"),
        Migration::new(
            2,
            "widget_names",
            "ALTER TABLE widgets ADD COLUMN name TEXT",
        ),
    ]
}

#[tokio::test]
async fn up_twice_is_a_no_op_the_second_time() {
    let store = common::fresh_store().await;
    let migrator = models::migrator();
    let first = migrator.up(&store).await.expect("first up");
    let every: Vec<i64> = (1..=models::migrations().len() as i64).collect();
    assert_eq!(first.applied, every);
    assert_eq!(first.already_applied, 0);
    let second = migrator.up(&store).await.expect("second up");
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, every.len());
    let status = migrator.status(&store).await.unwrap();
    assert!(
        status
            .iter()
            .all(|s| matches!(s.state, MigrationState::Applied { .. })),
        "{status:?}"
    );
    common::drop_schema(&store).await;
}

#[tokio::test]
async fn edited_applied_migration_is_refused() {
    let store = common::fresh_store().await;
    Migrator::new(two_migrations())
        .unwrap()
        .up(&store)
        .await
        .unwrap();
    let mut edited = two_migrations();
    edited[0].sql = "CREATE TABLE widgets (id BIGINT PRIMARY KEY, sneaky TEXT)".into();
    edited.push(Migration::new(
        3,
        "more",
        "CREATE TABLE more_widgets (id BIGINT)",
    ));
    let migrator = Migrator::new(edited).unwrap();
    let err = migrator.up(&store).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let text = err.to_string();
    assert!(text.contains("migration 1 (widgets) was edited"), "{text}");
    let status = migrator.status(&store).await.unwrap();
    assert_eq!(status[0].state, MigrationState::Modified);
    assert_eq!(
        status[2].state,
        MigrationState::Pending,
        "nothing applied after the refusal"
    );
    common::drop_schema(&store).await;
}

#[tokio::test]
async fn migration_unknown_to_this_build_is_refused_and_listed() {
    let store = common::fresh_store().await;
    Migrator::new(two_migrations())
        .unwrap()
        .up(&store)
        .await
        .unwrap();
    let older = Migrator::new(two_migrations()[..1].to_vec()).unwrap();
    let err = older.up(&store).await.unwrap_err();
    assert!(err.to_string().contains("does not know"), "{err}");
    let status = older.status(&store).await.unwrap();
    assert_eq!(status[1].state, MigrationState::Unknown);
    common::drop_schema(&store).await;
}

#[tokio::test]
async fn concurrent_runners_apply_each_migration_once() {
    let store = common::fresh_store().await;
    let migrator = models::migrator();
    let (a, b) = tokio::join!(migrator.up(&store), migrator.up(&store));
    let (a, b) = (a.expect("runner a"), b.expect("runner b"));
    let mut applied = [a.applied.clone(), b.applied.clone()].concat();
    applied.sort();
    let every: Vec<i64> = (1..=models::migrations().len() as i64).collect();
    assert_eq!(
        applied, every,
        "each migration applied by exactly one runner"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM udl_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, models::migrations().len() as i64);
    common::drop_schema(&store).await;
}

#[tokio::test]
async fn failing_migration_leaves_nothing_half_applied() {
    let store = common::fresh_store().await;
    let broken = vec![
        Migration::new(1, "ok", "CREATE TABLE fine (id BIGINT)"),
        Migration::new(
            2,
            "broken",
            "CREATE TABLE half (id BIGINT); SELECT no_such_function();",
        ),
    ];
    let err = Migrator::new(broken).unwrap().up(&store).await.unwrap_err();
    assert!(
        err.to_string().contains("migration 2 (broken) failed"),
        "{err}"
    );
    let half: bool = sqlx::query_scalar("SELECT to_regclass('half') IS NOT NULL")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        !half,
        "the failed migration's first statement must be rolled back"
    );
    let status = Migrator::new(two_migrations()[..0].to_vec())
        .unwrap()
        .status(&store)
        .await
        .unwrap();
    assert_eq!(status.len(), 1, "only migration 1 is recorded");
    common::drop_schema(&store).await;
}

#[test]
fn duplicate_versions_are_refused() {
    let dup = vec![
        Migration::new(1, "a", "SELECT 1"),
        Migration::new(1, "b", "SELECT 2"),
    ];
    assert_eq!(Migrator::new(dup).unwrap_err().kind(), ErrorKind::Config);
}
