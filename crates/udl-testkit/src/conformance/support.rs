//! What the cases share: the context they act in, the repository they act on, seeding.

use super::prelude::*;

pub(super) fn ctx() -> AccessContext {
    AccessContext::new("conformance-suite", Role::Service, Purpose::Operations)
        .expect("static context is valid")
}

pub(super) fn repo(s: &Subject) -> Repository<Note> {
    Repository::new(Arc::clone(&s.store)).expect("Note is a valid entity")
}

pub(super) async fn seed(r: &Repository<Note>, count: i64) -> Vec<Note> {
    let all = notes(count);
    for n in &all {
        r.create(&ctx(), n.clone()).await.expect("seed create");
    }
    all
}

pub(super) async fn ranks(r: &Repository<Note>, filter: Filter) -> Vec<i64> {
    let page = r
        .list(&ctx(), &filter, &[SortKey::asc("rank")], Page::first(1000))
        .await
        .expect("list");
    page.items.iter().map(|n| n.rank).collect()
}

pub(super) fn expected_ranks(all: &[Note], keep: impl Fn(&Note) -> bool) -> Vec<i64> {
    let mut v: Vec<i64> = all.iter().filter(|n| keep(n)).map(|n| n.rank).collect();
    v.sort();
    v
}

/// Whether the store filters and sorts on any field. A store that only reads by key must
/// refuse such queries with `Unsupported` naming itself (checked here), and the calling case
/// then ends: its remaining assertions are about results the store declares it cannot give.
pub(super) async fn serves_secondary_queries(s: &Subject, r: &Repository<Note>) -> bool {
    if s.store
        .capabilities()
        .supports(Capability::SecondaryFilters)
    {
        return true;
    }
    let by_owner = field("owner").eq("owner-1");
    let errors = [
        r.list(&ctx(), &by_owner, &[SortKey::asc("rank")], Page::first(10))
            .await
            .map(drop)
            .unwrap_err(),
        r.count(&ctx(), &Filter::All).await.map(drop).unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert_eq!(err.store(), Some(s.store.kind()), "{err}");
    }
    false
}
