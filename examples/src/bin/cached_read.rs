//! A cached read: therapeutic content declares `cache = "l1_l2"`, so its repository reads this
//! process's cache, then Redis, then MongoDB, and writes invalidate every process's copy.
//! Needs `[mongo]` and `[redis]`.

use udl::mongo::models::{ContentKind, TherapeuticContent};
use udl::{AccessContext, Changes, Json, Result, StoreKind};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let ctx = AccessContext::system("content-service");
    let content = data.repository::<TherapeuticContent>()?;
    let playbook = TherapeuticContent {
        id: Uuid::new_v4(),
        slug: "box-breathing".into(),
        title: "Box breathing".into(),
        kind: ContentKind::Playbook,
        body: "Breathe in for four counts.".into(),
        steps: Json(vec![]),
        tags: Json(vec!["anxiety".into()]),
        media_asset_id: None,
        content_version: 1,
        published: true,
        updated_at: chrono::Utc::now(),
        version: 1,
    };
    let id = content.create(&ctx, playbook).await?;
    for _ in 0..3 {
        content.get_required(&ctx, &id).await?; // one load, then L1 hits
    }
    content
        .update(
            &ctx,
            &id,
            Changes::new().set("title", "Box breathing, 4-4-4-4"),
        )
        .await?;
    let fresh = content.get_required(&ctx, &id).await?; // invalidated: loaded again
    assert_eq!(fresh.title, "Box breathing, 4-4-4-4");

    let stats = data
        .cache_stats(StoreKind::MONGO)
        .expect("Redis is configured");
    println!("{stats:?}");
    assert_eq!((stats.loads, stats.l1_hits), (2, 2));
    Ok(())
}
