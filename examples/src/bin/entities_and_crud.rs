//! An entity declared once, its table migrated, and the repository's everyday calls: create,
//! get, partial updates with optimistic concurrency, filters, keyset pages, counts and deletes.
//! Needs `[postgres]`.

use udl::postgres::{Migration, Migrator};
use udl::{field, AccessContext, Changes, Entity, ErrorKind, Page, Purpose, Result, Role, SortKey};
use uuid::Uuid;

/// A clinic's notice board entry: nothing personal in it, so it needs no privacy layers.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "clinic_notices", store = "postgres")]
struct ClinicNotice {
    #[udl(id, public)]
    id: Uuid,
    #[udl(public)]
    title: String,
    #[udl(internal)]
    priority: i64,
    #[udl(internal)]
    posted_at: chrono::DateTime<chrono::Utc>,
    #[udl(version, internal)]
    version: i64,
}

const NOTICES: &str = "CREATE TABLE clinic_notices (id UUID PRIMARY KEY, title TEXT NOT NULL,
    priority BIGINT NOT NULL, posted_at TIMESTAMPTZ NOT NULL, version BIGINT NOT NULL)";

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    // One migration history per database: the platform's migrations, then the service's own.
    let mut migrations = udl::postgres::models::migrations();
    migrations.push(Migration::new(1000, "clinic_notices", NOTICES));
    Migrator::new(migrations)?.up(data.postgres()?).await?;
    let ctx = AccessContext::new("front-desk-7", Role::Support, Purpose::Operations)?;

    let notices = data.repository::<ClinicNotice>()?;
    for (n, title) in ["Closed on Friday", "New parking rules", "Flu shots"]
        .iter()
        .enumerate()
    {
        let notice = ClinicNotice {
            id: Uuid::new_v4(),
            title: (*title).into(),
            priority: n as i64,
            posted_at: chrono::Utc::now(),
            version: 1,
        };
        notices.create(&ctx, notice).await?; // duplicate id → Conflict
    }
    let urgent = field("priority")
        .gte(1)
        .and(field("title").starts_with("Flu").not());
    let page = notices
        .list(&ctx, &urgent, &[SortKey::desc("priority")], Page::first(2))
        .await?;
    let first = &page.items[0];
    assert_eq!(first.title, "New parking rules");

    let renamed = Changes::new()
        .set("title", "New parking rules (updated)")
        .expect_version(1);
    assert!(notices.update(&ctx, &first.id, renamed).await?); // version is now 2
    let stale = Changes::new().set("priority", 9_i64).expect_version(1);
    let err = notices.update(&ctx, &first.id, stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    if let Some(cursor) = page.next {
        // keyset pagination
        let rest = notices
            .list(
                &ctx,
                &urgent,
                &[SortKey::desc("priority")],
                Page::after(cursor, 2),
            )
            .await?;
        assert!(rest.items.is_empty());
    }
    assert_eq!(notices.count(&ctx, &field("priority").lt(10)).await?, 3);
    assert!(notices.delete(&ctx, &first.id).await?);
    Ok(())
}
