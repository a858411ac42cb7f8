//! MongoDB migrations on the real server: idempotence, checksums, the lock, indexes.

use crate::common;

use mongodb::bson::doc;
use udl_core::{AccessContext, ErrorKind, MigrationState, Purpose, Role};
use udl_mongo::models::{self, ContentKind, TherapeuticContent};
use udl_mongo::{MongoMigration, MongoMigrator, MongoStore, Step};
use udl_testkit::{servers, Harness};

fn widgets(unique: bool) -> Vec<MongoMigration> {
    vec![MongoMigration::new(
        1,
        "widgets",
        vec![
            Step::CreateCollection {
                collection: "widgets".into(),
                validator: None,
            },
            Step::CreateIndex {
                collection: "widgets".into(),
                name: "by_code".into(),
                keys: doc! { "code": 1 },
                unique,
            },
        ],
    )]
}

fn content(slug: &str) -> TherapeuticContent {
    TherapeuticContent {
        id: uuid::Uuid::new_v4(),
        slug: slug.into(),
        title: "Grounding".into(),
        kind: ContentKind::Exercise,
        body: "Name five things you can see.".into(),
        steps: udl_core::Json(vec![]),
        tags: udl_core::Json(vec!["grounding".into()]),
        media_asset_id: None,
        content_version: 1,
        published: true,
        updated_at: chrono::Utc::now(),
        version: 1,
    }
}

/// Run on both targets: the server's capabilities take it down different paths.
async fn up_twice_is_a_no_op_and_declared_indexes_exist_on(h: common::MongoHarness) {
    let migrator = models::migrator();
    let first = migrator.up(&h.store).await.expect("first up");
    assert_eq!(first.applied, vec![1]);
    let second = migrator.up(&h.store).await.expect("second up");
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, 1);
    let status = migrator.status(&h.store).await.unwrap();
    assert!(
        matches!(status[0].state, MigrationState::Applied { .. }),
        "{status:?}"
    );

    let names = h
        .store
        .database()
        .collection::<mongodb::bson::Document>("document_chunks")
        .list_index_names()
        .await
        .unwrap();
    assert!(names.contains(&"by_document".to_owned()), "{names:?}");
    let ctx = AccessContext::new("migrations-test", Role::Admin, Purpose::Operations).unwrap();
    let repo = h.store.repository::<TherapeuticContent>().unwrap();
    repo.create(&ctx, content("grounding")).await.unwrap();
    let err = repo.create(&ctx, content("grounding")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "the unique slug index holds: {err}"
    );
    h.teardown().await;
}

#[tokio::test]
async fn edited_applied_migration_is_refused() {
    let h = common::MongoHarness::new().await;
    MongoMigrator::new(widgets(false))
        .unwrap()
        .up(&h.store)
        .await
        .unwrap();
    let edited = MongoMigrator::new(widgets(true)).unwrap();
    let err = edited.up(&h.store).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string().contains("migration 1 (widgets) was edited"),
        "{err}"
    );
    assert_eq!(
        edited.status(&h.store).await.unwrap()[0].state,
        MigrationState::Modified
    );
    h.teardown().await;
}

#[tokio::test]
async fn unknown_applied_migration_is_refused() {
    let h = common::MongoHarness::new().await;
    MongoMigrator::new(widgets(false))
        .unwrap()
        .up(&h.store)
        .await
        .unwrap();
    let empty = MongoMigrator::new(vec![]).unwrap();
    let err = empty.up(&h.store).await.unwrap_err();
    assert!(err.to_string().contains("does not know"), "{err}");
    assert_eq!(
        empty.status(&h.store).await.unwrap()[0].state,
        MigrationState::Unknown
    );
    h.teardown().await;
}

#[tokio::test]
async fn concurrent_runners_apply_each_migration_once() {
    let h = common::MongoHarness::new().await;
    let database = h.store.database().name().to_owned();
    let other = MongoStore::connect(&common::config(&database))
        .await
        .unwrap_or_else(|e| servers::unreachable("FerretDB/MongoDB", &servers::mongo_url(), &e));
    let migrator = models::migrator();
    let (a, b) = tokio::join!(migrator.up(&h.store), migrator.up(&other));
    let mut applied = [a.expect("runner a").applied, b.expect("runner b").applied].concat();
    applied.sort();
    assert_eq!(applied, vec![1], "exactly one runner applied migration 1");
    let records = h
        .store
        .database()
        .collection::<mongodb::bson::Document>("udl_migrations");
    assert_eq!(records.count_documents(doc! {}).await.unwrap(), 1);
    let locks = h
        .store
        .database()
        .collection::<mongodb::bson::Document>("udl_locks");
    assert_eq!(
        locks.count_documents(doc! {}).await.unwrap(),
        0,
        "the lock was released"
    );
    h.teardown().await;
}

#[tokio::test]
async fn up_twice_is_a_no_op_and_declared_indexes_exist_on_mongodb() {
    up_twice_is_a_no_op_and_declared_indexes_exist_on(common::MongoHarness::new().await).await;
}

#[tokio::test]
async fn up_twice_is_a_no_op_and_declared_indexes_exist_on_ferretdb() {
    up_twice_is_a_no_op_and_declared_indexes_exist_on(common::MongoHarness::ferretdb().await).await;
}
