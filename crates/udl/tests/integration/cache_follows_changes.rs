//! The tiered cache of a MongoDB entity follows writes made around udl: a document changed or
//! deleted with the raw driver (another service, `mongosh`) is read fresh through the
//! repository within the change feed's lag, long before the cache's own TTLs would expire it.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use udl::mongo::models::{ContentKind, TherapeuticContent};
use udl::{AccessContext, Entity as _, Json, StoreKind};
use udl_testkit::wait::until;
use uuid::Uuid;

use crate::common::world;
use udl_testkit::fixtures::{note, Note};

/// Well under the L1 TTL (30 s) and L2 TTL (10 min) of `TherapeuticContent`: a read that is
/// fresh within it came through the change feed, not an expiry.
const FOLLOWED_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_write_made_around_udl_reaches_the_cached_reads_through_the_change_feed() {
    let w = world(false).await;
    let ctx = AccessContext::system("cache-follow-test");
    let content = w.data.repository::<TherapeuticContent>().unwrap();
    let playbook = TherapeuticContent {
        id: Uuid::new_v4(),
        slug: "fake-follow".into(),
        title: "fake title".into(),
        kind: ContentKind::Playbook,
        body: "fake body".into(),
        steps: Json(vec![]),
        tags: Json(vec![]),
        media_asset_id: None,
        content_version: 1,
        published: true,
        updated_at: chrono::Utc::now(),
        version: 1,
    };
    let id = content.create(&ctx, playbook).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            content.get_required(&ctx, &id).await.unwrap().title,
            "fake title"
        );
    }
    let hits_before = w.data.cache_stats(StoreKind::MONGO).unwrap().l1_hits;
    assert!(hits_before >= 1, "the second read came from L1");

    let raw = mongodb::Client::with_uri_str(udl_testkit::servers::mongo_url())
        .await
        .unwrap();
    let collection = raw
        .database(w.data.mongo().unwrap().database().name())
        .collection::<Document>(TherapeuticContent::meta().name);
    let stored_id = collection
        .find_one(doc! { "slug": "fake-follow" })
        .await
        .unwrap()
        .expect("created above")
        .get("_id")
        .cloned()
        .unwrap();
    collection
        .update_one(
            doc! { "_id": stored_id.clone() },
            doc! { "$set": { "title": "fake title changed outside udl" } },
        )
        .await
        .unwrap();
    until(
        "the outside update to reach the cached reads",
        FOLLOWED_WITHIN,
        || async {
            let title = content.get_required(&ctx, &id).await.unwrap().title;
            (title == "fake title changed outside udl").then_some(())
        },
    )
    .await;

    collection
        .delete_one(doc! { "_id": stored_id })
        .await
        .unwrap();
    until(
        "the outside delete to reach the cached reads",
        FOLLOWED_WITHIN,
        || async {
            content
                .get(&ctx, &id)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;

    raw.shutdown().immediate(true).await;
    let data = w.data.clone();
    w.finish().await;
    data.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_entity_first_reached_after_connect_is_followed_too() {
    let w = world(false).await;
    let ctx = AccessContext::system("cache-follow-test");
    // Notes are none of the platform's models: their repository is the first the data layer
    // hears of them.
    let notes = w.data.repository_in::<Note>(StoreKind::MONGO).unwrap();
    let written = note(1);
    notes.create(&ctx, written.clone()).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            notes.get_required(&ctx, &written.id).await.unwrap().title,
            written.title
        );
    }
    assert!(w.data.cache_stats(StoreKind::MONGO).unwrap().l1_hits >= 1);

    let raw = mongodb::Client::with_uri_str(udl_testkit::servers::mongo_url())
        .await
        .unwrap();
    let collection = raw
        .database(w.data.mongo().unwrap().database().name())
        .collection::<Document>(Note::meta().name);
    // Changed around udl until a read sees it: the first outside write may land before the
    // feed opened, and is then covered by the cache being forgotten when it opens.
    until(
        "the outside update to reach the cached reads",
        FOLLOWED_WITHIN,
        || async {
            collection
                .update_one(
                    doc! { "rank": 1_i64 },
                    doc! { "$set": { "title": "fake title changed outside udl" } },
                )
                .await
                .unwrap();
            let title = notes.get_required(&ctx, &written.id).await.unwrap().title;
            (title == "fake title changed outside udl").then_some(())
        },
    )
    .await;
    // Once followed, a second outside change is seen without any further help.
    collection
        .update_one(
            doc! { "rank": 1_i64 },
            doc! { "$set": { "title": "fake title changed again" } },
        )
        .await
        .unwrap();
    until(
        "the second outside update to reach the cached reads",
        FOLLOWED_WITHIN,
        || async {
            let title = notes.get_required(&ctx, &written.id).await.unwrap().title;
            (title == "fake title changed again").then_some(())
        },
    )
    .await;

    raw.shutdown().immediate(true).await;
    let data = w.data.clone();
    w.finish().await;
    data.shutdown(Duration::from_secs(1)).await;
}
