//! The row every benchmark stores, and what udl and raw sides share.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use udl::{AccessContext, Page, Purpose, Repository, Role};
use udl_derive::Entity;
use uuid::Uuid;

/// Tasks issuing operations at once, and the pool size both sides share.
pub const CONCURRENCY: usize = 16;
/// Distinct owners, for filtered lists.
pub const OWNERS: usize = 20;

/// A row of the benchmark table.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "bench_events", cache = "l1_l2")]
pub struct BenchRow {
    #[udl(id, internal)]
    pub id: Uuid,
    #[udl(internal)]
    pub owner: String,
    #[udl(internal)]
    pub active: bool,
    #[udl(internal)]
    pub score: f64,
    #[udl(internal)]
    pub payload: String,
    #[udl(internal)]
    pub created_at: DateTime<Utc>,
    #[udl(version, internal)]
    pub version: i64,
}

/// The same row as a raw driver user would decode it.
#[allow(dead_code)] // fields are decoded to do the same work as udl, not read
pub struct RawRow {
    pub id: Uuid,
    pub owner: String,
    pub active: bool,
    pub score: f64,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// Row number `n`, with fake content.
pub fn row(n: usize) -> BenchRow {
    BenchRow {
        id: Uuid::new_v4(),
        owner: format!("owner-{}", n % OWNERS),
        active: (n / OWNERS).is_multiple_of(2),
        score: n as f64 * 0.5,
        payload: format!("fake event payload {n} {}", "x".repeat(64)),
        created_at: Utc.timestamp_opt(1_760_000_000 + n as i64, 0).unwrap(),
        version: 1,
    }
}

/// One request context shared by every call: services build it once per request, so it is
/// not part of the per-operation cost measured here.
pub fn ctx() -> &'static AccessContext {
    static CTX: OnceLock<AccessContext> = OnceLock::new();
    CTX.get_or_init(|| {
        AccessContext::new("udl-bench", Role::Service, Purpose::Operations).expect("valid context")
    })
}

/// udl's side of `list_filter2_limit50`: the first page of 50 of one owner's active rows (the
/// owner spread by the call's number `i`), through `repo`.
pub async fn list_owner_page(repo: &Repository<BenchRow>, i: u64) {
    let filter = udl::field("owner")
        .eq(format!("owner-{}", i as usize % OWNERS))
        .and(udl::field("active").eq(true));
    let page = repo
        .list(ctx(), &filter, &[], Page::first(50))
        .await
        .expect("udl list");
    assert_eq!(page.items.len(), 50);
}
