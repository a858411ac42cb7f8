//! `media_rights_prune` over the real stores: once an asset's license ends, what cites it
//! (document chunks, therapeutic content) vanishes from `get`, lists and `nearest`, also from
//! the cache of a second data layer (another process in effect); after the grace period it is
//! deleted with a receipt; running the prune again changes nothing; a renewed license shows it
//! again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use udl::jobs::retention::Receipts;
use udl::jobs::{Counts, JobRunner, ManualClock, MediaRightsPrune, NoProgress};
use udl::mongo::models::{ContentKind, DocumentChunk, TherapeuticContent};
use udl::postgres::models::{MediaAsset, MediaStatus, NewMediaAsset};
use udl::{field, Changes, DataLayer, Json, Page, SortKey};
use udl_testkit::wait::until;
use uuid::Uuid;

use crate::common::{ctx, world};

/// Well under the cache's TTLs: an eviction seen within it came through the change feed.
const FOLLOWED_WITHIN: Duration = Duration::from_secs(10);

fn asset(uri: &str, expires_at: Option<DateTime<Utc>>, grace: Duration) -> MediaAsset {
    MediaAsset::register(
        &NewMediaAsset {
            uri,
            source: "Fake Publisher",
            license: "fake-license-1",
            expires_at,
            grace_period: grace,
            content: uri.as_bytes(),
            expected_sha256: None,
        },
        Utc::now(),
    )
    .expect("a valid asset")
}

fn chunk(document: Uuid, index: i64, asset: Uuid) -> DocumentChunk {
    let angle = index as f32 * 0.3;
    DocumentChunk {
        id: Uuid::new_v4(),
        document_id: document,
        chunk_index: index,
        text: format!("fake licensed passage {index}"),
        embedding: vec![angle.cos(), angle.sin(), 0.0, 0.5],
        embedding_model: "fake-embed-4".into(),
        dimension: 4,
        content_type: "playbook".into(),
        metadata: serde_json::json!({}),
        source_media_asset_id: Some(asset),
        created_at: Utc::now(),
    }
}

fn content(asset: Uuid) -> TherapeuticContent {
    TherapeuticContent {
        id: Uuid::new_v4(),
        slug: format!("fake-video-{asset}"),
        title: "fake breathing video".into(),
        kind: ContentKind::Exercise,
        body: "fake body".into(),
        steps: Json(vec![]),
        tags: Json(vec![]),
        media_asset_id: Some(asset),
        content_version: 1,
        published: true,
        updated_at: Utc::now(),
        version: 1,
    }
}

async fn prune(data: &DataLayer, now: DateTime<Utc>, dry_run: bool) -> Counts {
    let pg = data.postgres().unwrap().clone();
    let job = MediaRightsPrune::new(pg.clone(), data.mongo().unwrap().clone());
    JobRunner::new(pg, Arc::new(ManualClock::at(now)))
        .run(&job, dry_run, Arc::new(NoProgress))
        .await
        .expect("the prune runs")
        .counts
}

fn count(counts: &Counts, key: &str) -> u64 {
    counts
        .get(key)
        .copied()
        .unwrap_or_else(|| panic!("no {key} in {counts:?}"))
}

async fn indexes_found(data: &DataLayer, document: Uuid) -> Vec<i64> {
    let chunks = data.repository::<DocumentChunk>().unwrap();
    let hits = chunks
        .nearest(
            &ctx(),
            "embedding",
            &[1.0, 0.0, 0.0, 0.5],
            10,
            &field("document_id").eq(document),
        )
        .await
        .unwrap();
    let mut found: Vec<i64> = hits.iter().map(|(c, _)| c.chunk_index).collect();
    found.sort();
    found
}

#[tokio::test]
async fn an_expired_assets_dependents_vanish_everywhere_then_go_after_the_grace_period() {
    let w = world(true).await;
    let config = udl::config::from_sources(None, w.vars.clone()).unwrap();
    let other = DataLayer::connect(&config)
        .await
        .expect("a second data layer");
    let assets = w.data.repository::<MediaAsset>().unwrap();
    let licensed_until = Utc::now() + chrono::Duration::days(1);
    let grace = Duration::from_secs(7 * 86_400);
    let expiring = asset(
        "https://media.example.test/fake/expiring.mp4",
        Some(licensed_until),
        grace,
    );
    let lasting = asset("https://media.example.test/fake/lasting.pdf", None, grace);
    for a in [&expiring, &lasting] {
        assets.create(&ctx(), a.clone()).await.unwrap();
    }
    let document = Uuid::new_v4();
    let chunks = w.data.repository::<DocumentChunk>().unwrap();
    let mut batch: Vec<DocumentChunk> = (0..3).map(|i| chunk(document, i, expiring.id)).collect();
    batch.extend((3..5).map(|i| chunk(document, i, lasting.id)));
    chunks.create_many(&ctx(), batch.clone()).await.unwrap();
    let video = content(expiring.id);
    w.data
        .repository::<TherapeuticContent>()
        .unwrap()
        .create(&ctx(), video.clone())
        .await
        .unwrap();

    // The second process has the video cached and finds every chunk.
    let other_content = other.repository::<TherapeuticContent>().unwrap();
    for _ in 0..2 {
        assert!(other_content
            .get(&ctx(), &video.id)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(indexes_found(&other, document).await, [0, 1, 2, 3, 4]);

    // A second before the license ends nothing changes.
    let second = chrono::Duration::seconds(1);
    let counts = prune(&w.data, licensed_until - second, false).await;
    assert_eq!(count(&counts, "assets_disabled"), 0);

    // A second after: disabled, and what cites it hidden from every read, in both processes.
    let counts = prune(&w.data, licensed_until + second, false).await;
    assert_eq!(count(&counts, "assets_disabled"), 1);
    assert_eq!(count(&counts, "dependents_hidden"), 4);
    let disabled = assets.get_required(&ctx(), &expiring.id).await.unwrap();
    assert_eq!(disabled.status, MediaStatus::Disabled);
    assert_eq!(indexes_found(&w.data, document).await, [3, 4]);
    let listed = chunks
        .list(
            &ctx(),
            &field("document_id").eq(document),
            &[SortKey::asc("chunk_index")],
            Page::first(10),
        )
        .await
        .unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|c| c.chunk_index)
            .collect::<Vec<_>>(),
        [3, 4]
    );
    assert!(chunks.get(&ctx(), &batch[0].id).await.unwrap().is_none());
    until(
        "the second process's cache to drop the video",
        FOLLOWED_WITHIN,
        || async {
            other_content
                .get(&ctx(), &video.id)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_eq!(indexes_found(&other, document).await, [3, 4]);

    // Running it again changes nothing.
    let counts = prune(&w.data, licensed_until + second, false).await;
    assert_eq!(
        (
            count(&counts, "assets_disabled"),
            count(&counts, "dependents_hidden")
        ),
        (0, 0)
    );

    // After the grace period: a dry run counts, the run deletes, with a receipt.
    let after_grace = licensed_until + second + chrono::Duration::from_std(grace).unwrap();
    let counts = prune(&w.data, after_grace, true).await;
    assert_eq!(
        (
            count(&counts, "assets_removed"),
            count(&counts, "dependents_deleted")
        ),
        (1, 4)
    );
    assert_eq!(
        w.documents("document_chunks").await.len(),
        5,
        "a dry run deletes nothing"
    );
    let counts = prune(&w.data, after_grace, false).await;
    assert_eq!(
        (
            count(&counts, "assets_removed"),
            count(&counts, "dependents_deleted")
        ),
        (1, 4)
    );
    assert_eq!(w.documents("document_chunks").await.len(), 2);
    assert!(w.documents("therapeutic_content").await.is_empty());
    let removed = assets.get_required(&ctx(), &expiring.id).await.unwrap();
    assert_eq!(removed.status, MediaStatus::Removed);
    let receipts = Receipts::new(w.data.postgres().unwrap().clone())
        .since(None)
        .await
        .unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        (receipts[0].data_class.as_str(), receipts[0].deleted),
        ("media_dependents", 4)
    );
    assert_eq!(
        receipts[0].detail["assets"],
        serde_json::json!([expiring.id.to_string()])
    );
    let counts = prune(&w.data, after_grace, false).await;
    assert_eq!(
        (
            count(&counts, "assets_removed"),
            count(&counts, "dependents_deleted")
        ),
        (0, 0)
    );

    other.shutdown(Duration::from_secs(1)).await;
    w.finish().await;
}

#[tokio::test]
async fn a_renewed_license_shows_the_hidden_records_again() {
    let w = world(true).await;
    let assets = w.data.repository::<MediaAsset>().unwrap();
    let licensed_until = Utc::now() + chrono::Duration::days(1);
    let renewed = asset(
        "https://media.example.test/fake/renewed.mp3",
        Some(licensed_until),
        Duration::from_secs(86_400),
    );
    assets.create(&ctx(), renewed.clone()).await.unwrap();
    let document = Uuid::new_v4();
    let chunks = w.data.repository::<DocumentChunk>().unwrap();
    chunks
        .create_many(
            &ctx(),
            (0..2).map(|i| chunk(document, i, renewed.id)).collect(),
        )
        .await
        .unwrap();
    let after = licensed_until + chrono::Duration::seconds(1);
    assert_eq!(
        count(&prune(&w.data, after, false).await, "dependents_hidden"),
        2
    );
    assert!(indexes_found(&w.data, document).await.is_empty());

    let extension = Changes::new().set("expires_at", licensed_until + chrono::Duration::days(365));
    assert!(assets.update(&ctx(), &renewed.id, extension).await.unwrap());
    let counts = prune(&w.data, after, false).await;
    assert_eq!(
        (
            count(&counts, "assets_restored"),
            count(&counts, "dependents_restored")
        ),
        (1, 2)
    );
    assert_eq!(indexes_found(&w.data, document).await, [0, 1]);
    let back = assets.get_required(&ctx(), &renewed.id).await.unwrap();
    assert_eq!((back.status, back.disabled_at), (MediaStatus::Active, None));
    w.finish().await;
}
