//! Change streams on the real MongoDB replica set: writes by other clients (a second store, the
//! raw driver) arrive in commit order as ids and kinds, a feed opened again from a kept resume
//! point goes on after it, including changes made while no feed was open; FerretDB refuses,
//! and so does an entity whose id is PII.

use std::time::Duration;

use mongodb::bson::doc;
use udl_core::{
    AccessContext, Backend as _, Changes, Entity as _, ErrorKind, Purpose, Role, Value,
};
use udl_derive::Entity;
use udl_mongo::{ChangeFeed, ChangeKind, MongoStore, ResumePoint};
use udl_testkit::fixtures::{note, Note};
use udl_testkit::{servers, Harness};

use crate::common::{config_on, MongoHarness};

/// Longest wait for a change that was committed before it is asked for.
const ARRIVAL: Duration = Duration::from_secs(10);

fn ctx() -> AccessContext {
    AccessContext::new("mongo-changes-test", Role::Service, Purpose::Operations).unwrap()
}

/// The next `n` changes as (kind, id).
async fn take(feed: &mut ChangeFeed, n: usize) -> Vec<(ChangeKind, Option<Value>)> {
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        let change = tokio::time::timeout(ARRIVAL, feed.next())
            .await
            .expect("a committed change arrives")
            .unwrap()
            .expect("the feed goes on");
        seen.push((change.kind, change.id));
    }
    seen
}

#[tokio::test]
async fn other_clients_writes_arrive_in_order_and_a_kept_point_resumes_after_itself() {
    let h = MongoHarness::new().await;
    let notes = h.store.repository::<Note>().unwrap();
    notes.create(&ctx(), note(0)).await.unwrap(); // the collection exists before the feed
    let mut feed = h.store.changes(Note::meta(), None).await.unwrap();

    // Another process's store, and the raw driver, write.
    let database = h.store.database().name().to_owned();
    let other = MongoStore::connect(&config_on(&servers::mongo_url(), &database))
        .await
        .unwrap();
    let written = note(1);
    let id = Value::Uuid(written.id);
    let theirs = other.repository::<Note>().unwrap();
    theirs.create(&ctx(), written.clone()).await.unwrap();
    theirs
        .update(
            &ctx(),
            &written.id,
            Changes::new().set("title", "fake changed"),
        )
        .await
        .unwrap();
    let raw = mongodb::Client::with_uri_str(servers::mongo_url())
        .await
        .unwrap();
    let collection = raw
        .database(&database)
        .collection::<mongodb::bson::Document>(Note::meta().name);
    let stored = collection
        .find_one(doc! { "title": "fake changed" })
        .await
        .unwrap()
        .expect("written above");
    collection
        .delete_one(doc! { "_id": stored.get("_id").unwrap().clone() })
        .await
        .unwrap();

    let first = tokio::time::timeout(ARRIVAL, feed.next())
        .await
        .expect("the insert arrives")
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.kind, first.id.clone()),
        (ChangeKind::Insert, Some(id.clone()))
    );
    assert_eq!(
        take(&mut feed, 2).await,
        [
            (ChangeKind::Update, Some(id.clone())),
            (ChangeKind::Delete, Some(id.clone()))
        ]
    );

    // Kept as bytes and opened again: the feed goes on right after the insert.
    let kept = ResumePoint::from_bytes(&first.resume.to_bytes().unwrap()).unwrap();
    let mut resumed = h.store.changes(Note::meta(), Some(&kept)).await.unwrap();
    assert_eq!(
        take(&mut resumed, 2).await,
        [
            (ChangeKind::Update, Some(id.clone())),
            (ChangeKind::Delete, Some(id))
        ]
    );

    // What is written while no feed is open arrives when one opens at the last point.
    let last = resumed.resume_point().expect("a point after two changes");
    drop((feed, resumed));
    let later = note(2);
    theirs.create(&ctx(), later.clone()).await.unwrap();
    let mut reopened = h.store.changes(Note::meta(), Some(&last)).await.unwrap();
    assert_eq!(
        take(&mut reopened, 1).await,
        [(ChangeKind::Insert, Some(Value::Uuid(later.id)))]
    );

    let err = ResumePoint::from_bytes(b"not a point").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    drop(reopened);
    other.close().await;
    raw.shutdown().immediate(true).await;
    h.teardown().await;
}

/// An entity whose id is an e-mail address: its ids are PII.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "changes_contacts")]
struct Contact {
    #[udl(id, pii, plaintext = "looked up by address")]
    email: String,
    #[udl(internal)]
    kind: String,
}

#[tokio::test]
async fn ferretdb_and_pii_ids_are_refused() {
    let h = MongoHarness::new().await;
    let err = h
        .store
        .changes(Contact::meta(), None)
        .await
        .err()
        .expect("PII ids");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("changes_contacts"), "{err}");
    h.teardown().await;

    let h = MongoHarness::ferretdb().await;
    let err = h
        .store
        .changes(Note::meta(), None)
        .await
        .err()
        .expect("FerretDB");
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    h.teardown().await;
}
