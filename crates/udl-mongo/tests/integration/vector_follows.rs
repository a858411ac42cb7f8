//! The in-process vector index on real MongoDB: writes by another client (another udl
//! process, `mongosh`) reach it through the change feed, and a saved index opens after a
//! restart and catches up on what changed while it was closed.
//!
//! Above `EXACT_SCAN_LIMIT` notes a search asks the index first, and only the documents it
//! proposes are fetched: a note the index does not hold cannot be found, so finding one
//! written by another client proves the index took it in.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use udl_core::{field, AccessContext, Backend as _, Entity as _, Purpose, Repository, Role};
use udl_mongo::{MongoStore, VectorIndexStatus};
use udl_testkit::fixtures::{note, Note};
use udl_testkit::wait::until;
use udl_testkit::Harness as _;

/// Well beyond the feed's lag on a local server.
const FOLLOWED_WITHIN: Duration = Duration::from_secs(10);

/// Every stored note points somewhere in the x-y plane; this one alone points along z.
const ALONG_Z: [f32; 3] = [0.0, 0.0, 1.0];
const AGAINST_Z: [f32; 3] = [0.0, 0.0, -1.0];

fn ctx() -> AccessContext {
    AccessContext::new("vector-follow-test", Role::Service, Purpose::Operations).unwrap()
}

fn in_plane(n: i64) -> Vec<f32> {
    let angle = n as f32 * 2.399_963;
    vec![angle.cos(), angle.sin(), 0.0]
}

/// More notes than the exact scan covers, every one active.
async fn many_notes(repo: &Repository<Note>) -> i64 {
    let count = udl_mongo::EXACT_SCAN_LIMIT as i64 + 500;
    let batch: Vec<Note> = (0..count)
        .map(|n| Note {
            embedding: Some(in_plane(n)),
            active: true,
            ..note(n)
        })
        .collect();
    repo.create_many(&ctx(), batch).await.unwrap();
    count
}

/// The rank of the note nearest to `query` among the active ones.
async fn nearest_rank(repo: &Repository<Note>, query: &[f32]) -> i64 {
    let found = repo
        .nearest(&ctx(), "embedding", query, 1, &field("active").eq(true))
        .await
        .unwrap();
    found[0].0.rank
}

fn notes_index(store: &MongoStore) -> VectorIndexStatus {
    store
        .vector_indexes()
        .into_iter()
        .find(|s| s.field == "embedding")
        .expect("the notes' index is open")
}

fn raw_notes(store: &MongoStore) -> mongodb::Collection<Document> {
    store.database().collection(Note::meta().name)
}

#[tokio::test]
async fn writes_by_another_client_reach_the_vector_index_through_the_change_feed() {
    let h = common::MongoHarness::new().await;
    let repo: Repository<Note> = h.store.repository().unwrap();
    let count = many_notes(&repo).await;
    assert_ne!(nearest_rank(&repo, &ALONG_Z).await, count, "index built");
    assert_eq!(notes_index(&h.store).vectors, count as usize);

    // Another udl process: its own client, its own indexes.
    let config = common::config(h.store.database().name());
    let other = MongoStore::connect(&config).await.unwrap();
    let other_repo: Repository<Note> = other.repository().unwrap();
    let pointing_up = Note {
        embedding: Some(ALONG_Z.to_vec()),
        active: true,
        ..note(count)
    };
    other_repo
        .create(&ctx(), pointing_up.clone())
        .await
        .unwrap();
    until(
        "the other process's insert to reach the index",
        FOLLOWED_WITHIN,
        || async { (nearest_rank(&repo, &ALONG_Z).await == count).then_some(()) },
    )
    .await;

    // An update made with the raw driver turns the note around.
    raw_notes(&other)
        .update_one(
            doc! { "rank": count },
            doc! { "$set": { "embedding": AGAINST_Z.to_vec() } },
        )
        .await
        .unwrap();
    until(
        "the outside update to reach the index",
        FOLLOWED_WITHIN,
        || async { (nearest_rank(&repo, &AGAINST_Z).await == count).then_some(()) },
    )
    .await;
    assert_eq!(notes_index(&h.store).vectors, count as usize + 1);

    other_repo.delete(&ctx(), &pointing_up.id).await.unwrap();
    until(
        "the other process's delete to reach the index",
        FOLLOWED_WITHIN,
        || async { (notes_index(&h.store).vectors == count as usize).then_some(()) },
    )
    .await;
    assert_ne!(nearest_rank(&repo, &AGAINST_Z).await, count);
    other.close().await;
    h.teardown().await;
}

#[tokio::test]
async fn a_saved_scan_opens_after_a_restart_and_catches_up_on_what_changed_meanwhile() {
    saved_index_opens_and_catches_up(udl_mongo::SCAN_LIMIT).await;
}

#[tokio::test]
async fn a_saved_graph_opens_after_a_restart_and_catches_up_on_what_changed_meanwhile() {
    saved_index_opens_and_catches_up(0).await;
}

/// With indexes of up to `scan_limit` vectors scans, larger ones graphs.
async fn saved_index_opens_and_catches_up(scan_limit: usize) {
    let h = common::MongoHarness::new().await;
    let dir = save_dir();
    let saving = with_save_dir(h.store.database().name(), &dir, scan_limit).await;
    let repo: Repository<Note> = saving.repository().unwrap();
    let count = many_notes(&repo).await;
    assert_ne!(nearest_rank(&repo, &ALONG_Z).await, count);
    let built = notes_index(&saving);
    assert!(!built.opened_from_save, "the first one is built");
    assert_eq!(built.graph, count as usize > scan_limit, "{built:?}");
    saving.close().await; // saves it

    // While no process keeps the index, another client writes.
    let pointing_up = Note {
        embedding: Some(ALONG_Z.to_vec()),
        active: true,
        ..note(count)
    };
    let repo: Repository<Note> = h.store.repository().unwrap();
    repo.create(&ctx(), pointing_up).await.unwrap();
    raw_notes(&h.store)
        .delete_one(doc! { "rank": 0 })
        .await
        .unwrap();

    let reopened = with_save_dir(h.store.database().name(), &dir, scan_limit).await;
    let repo: Repository<Note> = reopened.repository().unwrap();
    until(
        "the write made while closed to reach the opened index",
        FOLLOWED_WITHIN,
        || async { (nearest_rank(&repo, &ALONG_Z).await == count).then_some(()) },
    )
    .await;
    let status = notes_index(&reopened);
    assert!(status.opened_from_save, "opened, not built: {status:?}");
    assert_eq!(
        status.graph, built.graph,
        "opened as the kind it was saved as"
    );
    until(
        "the delete made while closed to reach it",
        FOLLOWED_WITHIN,
        || async { (notes_index(&reopened).vectors == count as usize).then_some(()) },
    )
    .await;
    reopened.close().await;
    h.teardown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_damaged_save_is_not_opened_and_the_index_is_built_instead() {
    let h = common::MongoHarness::new().await;
    let dir = save_dir();
    let saving = with_save_dir(h.store.database().name(), &dir, udl_mongo::SCAN_LIMIT).await;
    let repo: Repository<Note> = saving.repository().unwrap();
    let count = many_notes(&repo).await;
    nearest_rank(&repo, &ALONG_Z).await;
    saving.close().await;
    // The notes' save by name: other entities' indexes may be saved beside it.
    let saved = dir.join(format!(
        "{}.conformance_notes.embedding",
        h.store.database().name()
    ));
    assert!(
        saved.join("meta.json").exists(),
        "the notes' index was saved"
    );
    std::fs::write(saved.join("meta.json"), b"{ not json").unwrap();

    let reopened = with_save_dir(h.store.database().name(), &dir, udl_mongo::SCAN_LIMIT).await;
    let repo: Repository<Note> = reopened.repository().unwrap();
    assert_ne!(nearest_rank(&repo, &ALONG_Z).await, count);
    let status = notes_index(&reopened);
    assert!(!status.opened_from_save, "{status:?}");
    assert_eq!(status.vectors, count as usize, "built from the collection");
    reopened.close().await;
    h.teardown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

async fn with_save_dir(database: &str, dir: &std::path::Path, scan_limit: usize) -> MongoStore {
    let mut config = common::config(database);
    config.vector_index_dir = Some(dir.to_owned());
    config.vector_scan_limit = scan_limit;
    MongoStore::connect(&config).await.unwrap()
}

fn save_dir() -> PathBuf {
    std::env::temp_dir().join(format!("udl-vector-save-{}", uuid::Uuid::new_v4()))
}
