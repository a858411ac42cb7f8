//! Retention, legal holds and the media-rights prune, run as jobs with a clock standing where
//! the example wants: a licensed video and the chunk citing it vanish from retrieval once the
//! license ends; seven years on, the access log's months held by a legal hold stay, and go once
//! the hold is released, leaving receipts and a chain that still verifies. Needs `[postgres]`, `[mongo]`
//! and `[privacy]`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use udl::jobs::retention::{DataClass, HoldScope, LegalHolds, Receipts, RetentionPurge};
use udl::jobs::{JobRunner, ManualClock, MediaRightsPrune, NoProgress};
use udl::mongo::models::DocumentChunk;
use udl::postgres::models::{MediaAsset, NewMediaAsset};
use udl::privacy::audit::verify_log;
use udl::{field, AccessContext, Result};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let config = udl_examples::config()?;
    let ctx = AccessContext::system("retention-example");
    let pg = data.postgres()?;

    // A video licensed for a day, and a chunk of its transcript.
    let licensed_until = Utc::now() + chrono::Duration::days(1);
    let video = MediaAsset::register(
        &NewMediaAsset {
            uri: "https://media.example.test/fake/grounding.mp4",
            source: "Fake Press",
            license: "fake-license-7",
            expires_at: Some(licensed_until),
            grace_period: Duration::from_secs(7 * 86_400),
            content: b"fake grounding video",
            expected_sha256: None,
        },
        Utc::now(),
    )?;
    data.repository::<MediaAsset>()?
        .create(&ctx, video.clone())
        .await?;
    let chunks = data.repository::<DocumentChunk>()?;
    let chunk = DocumentChunk {
        id: Uuid::new_v4(),
        document_id: Uuid::new_v4(),
        chunk_index: 0,
        text: "fake transcript of a grounding exercise".into(),
        embedding: vec![0.6, 0.8, 0.0, 0.0],
        embedding_model: "fake-embed-4".into(),
        dimension: 4,
        content_type: "exercise".into(),
        metadata: serde_json::json!({}),
        source_media_asset_id: Some(video.id),
        created_at: Utc::now(),
    };
    chunks.create(&ctx, chunk.clone()).await?;

    // The prune, a second after the license ended: the chunk is hidden from retrieval.
    let clock = Arc::new(ManualClock::at(
        licensed_until + chrono::Duration::seconds(1),
    ));
    let runner = JobRunner::new(pg.clone(), clock.clone());
    let prune = MediaRightsPrune::new(pg.clone(), data.mongo()?.clone());
    let run = runner.run(&prune, false, Arc::new(NoProgress)).await?;
    println!("media_rights_prune: {:?}", run.counts);
    let near = chunks
        .nearest(
            &ctx,
            "embedding",
            &[0.6, 0.8, 0.0, 0.0],
            5,
            &field("content_type").eq("exercise"),
        )
        .await?;
    assert!(near.iter().all(|(c, _)| c.id != chunk.id));

    // Seven years on, this month's access log is past retention; held for a matter, it stays.
    let holds = LegalHolds::new(pg.clone());
    let hold = holds
        .place(
            HoldScope::Class(DataClass::PhiAccessLog),
            "matter 2026-FAKE-1",
            "counsel-fake-1",
        )
        .await?;
    clock.set(Utc::now() + chrono::Duration::days(7 * 366));
    let job = RetentionPurge::new(pg.clone(), config.retention.clone());
    let held = runner.run(&job, false, Arc::new(NoProgress)).await?;
    assert!(held.counts["phi_access_log.months_held"] >= 1);
    // Released, the months go; the chain still verifies across them.
    holds.release(hold, "counsel-fake-1").await?;
    let run = runner.run(&job, false, Arc::new(NoProgress)).await?;
    assert!(run.counts["phi_access_log.months_dropped"] >= 1);
    for receipt in Receipts::new(pg.clone()).since(None).await? {
        println!(
            "{} {}: deleted {}, held back {}",
            receipt.store, receipt.data_class, receipt.deleted, receipt.held_back
        );
    }
    assert!(verify_log(pg, None, None).await?.intact());
    Ok(())
}
