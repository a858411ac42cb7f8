//! The ScyllaDB backend on the real server (Apache Cassandra 5.0): session, health, errors,
//! migrations.

use crate::common;

use std::time::Duration;

use common::{config, drop_keyspace, store};

use udl_core::{ErrorKind, MigrationState};
use udl_scylla::{models, CqlMigration, ScyllaMigrator, ScyllaStore};

fn all_versions() -> Vec<i64> {
    models::migrations().iter().map(|m| m.version).collect()
}

#[tokio::test]
async fn health_is_a_real_round_trip_that_finds_the_keyspace() {
    let s = store().await;
    let missing = s.health(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config, "{missing}");
    ScyllaMigrator::new(vec![CqlMigration::new(1, "nothing", vec![])])
        .unwrap()
        .up(&s)
        .await
        .unwrap();
    let latency = s.health(Duration::from_secs(5)).await.unwrap();
    assert!(latency < Duration::from_secs(5));
    drop_keyspace(&s).await;
}

#[tokio::test]
async fn unreachable_nodes_are_temporary_unavailable() {
    let err = match ScyllaStore::connect(&config("127.0.0.1:1", "t_nowhere")).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
}

#[tokio::test]
async fn migrations_apply_once_and_record_checksums() {
    let s = store().await;
    let first = models::migrator().up(&s).await.unwrap();
    assert_eq!(first.applied, all_versions());
    let second = models::migrator().up(&s).await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, all_versions().len());
    let status = models::migrator().status(&s).await.unwrap();
    assert!(matches!(status[0].state, MigrationState::Applied { .. }));
    // The tables exist and take rows.
    let insert = format!(
        "INSERT INTO \"{}\".metric_points (series, bucket, at, value) VALUES ('fake.cpu', 1, '2026-11-26 12:00:00+0000', 0.5)",
        s.keyspace()
    );
    s.session()
        .get_session()
        .query_unpaged(insert, ())
        .await
        .unwrap();
    drop_keyspace(&s).await;
}

#[tokio::test]
async fn concurrent_runners_apply_each_migration_once() {
    let s = store().await;
    let runners: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { models::migrator().up(&s).await })
        })
        .collect();
    let mut applied = Vec::new();
    for r in runners {
        applied.extend(r.await.unwrap().unwrap().applied);
    }
    applied.sort();
    assert_eq!(
        applied,
        all_versions(),
        "each migration applied by exactly one runner"
    );
    drop_keyspace(&s).await;
}

#[tokio::test]
async fn an_edited_migration_is_refused_and_reported() {
    let s = store().await;
    let original = CqlMigration::new(
        1,
        "notes",
        vec!["CREATE TABLE IF NOT EXISTS {keyspace}.notes (id uuid PRIMARY KEY, body text)".into()],
    );
    ScyllaMigrator::new(vec![original.clone()])
        .unwrap()
        .up(&s)
        .await
        .unwrap();
    let mut edited = original;
    edited.statements[0] =
        "CREATE TABLE IF NOT EXISTS {keyspace}.notes (id uuid PRIMARY KEY, body text, tag text)"
            .into();
    let migrator = ScyllaMigrator::new(vec![edited]).unwrap();
    let err = migrator.up(&s).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        migrator.status(&s).await.unwrap()[0].state,
        MigrationState::Modified
    );
    drop_keyspace(&s).await;
}

#[tokio::test]
async fn a_failing_statement_names_its_migration() {
    let s = store().await;
    let broken = ScyllaMigrator::new(vec![CqlMigration::new(
        1,
        "broken",
        vec!["CREATE TABLE {keyspace}.broken (id uuid PRIMARY KEY, x notatype)".into()],
    )])
    .unwrap();
    let err = broken.up(&s).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.message().contains("migration 1 (broken) failed"),
        "{err}"
    );
    assert!(!err.message().contains("notatype"), "no server text: {err}");
    assert!(broken.status(&s).await.unwrap()[0].state == MigrationState::Pending);
    drop_keyspace(&s).await;
}
