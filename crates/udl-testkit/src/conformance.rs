//! The conformance suite: one set of behaviours every backend must show on its real server.
//!
//! A backend instantiates it with [`conformance_suite!`](crate::conformance_suite), giving a
//! function that builds a fresh [`Harness`] (its own namespace, the `conformance_notes` table
//! or collection created). Each case becomes one test.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use udl_core::{
    field, AccessContext, Capability, Changes, Entity, ErrorKind, Filter, Page, Purpose,
    RecordStore, Repository, Role, SortKey, StoreKind, Value,
};

use crate::fixtures::{hostile_strings, note, notes, Note};

/// What a case gets: the store under test and what it declares about itself.
pub struct Subject {
    /// The store, with an empty `conformance_notes` table or collection.
    pub store: Arc<dyn RecordStore>,
    /// Whether the store cannot hold NUL characters in text (PostgreSQL cannot).
    pub refuses_nul_in_text: bool,
}

/// A backend's test fixture: one isolated namespace, cleaned up by `teardown`.
pub trait Harness: Sized {
    /// The subject the cases run against.
    fn subject(&self) -> Subject;
    /// Removes the namespace and everything in it.
    fn teardown(self) -> impl Future<Output = ()>;
}

/// Runs one case and tears the harness down, even when the case panics.
pub async fn run<H, F, Fut>(harness: H, case: F)
where
    H: Harness,
    F: FnOnce(Subject) -> Fut,
    Fut: Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(case(harness.subject()))
        .catch_unwind()
        .await;
    harness.teardown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Instantiates every conformance case as a `#[tokio::test]`, each with a fresh harness from
/// `$setup` (an async fn returning a [`Harness`]). The backend's crate needs `tokio` as a
/// dev-dependency.
#[macro_export]
macro_rules! conformance_suite {
    ($setup:path) => {
        $crate::conformance_suite!(@cases $setup;
            create_then_get_round_trips_every_kind,
            get_of_missing_id_is_none_and_required_is_not_found,
            duplicate_id_is_a_permanent_conflict,
            update_sets_only_named_fields_and_bumps_version,
            update_of_missing_id_reports_no_match,
            stale_version_is_a_conflict,
            delete_reports_whether_it_matched,
            count_and_exists,
            filter_eq_and_ne,
            filter_ranges,
            filter_in,
            filter_null_checks,
            filter_boolean_logic,
            filter_prefix_is_literal,
            sort_ascending_descending_and_nulls,
            limit_and_offset_pages,
            keyset_pages_cover_everything_once,
            bad_cursor_is_invalid_input,
            unknown_fields_are_invalid_input,
            wrong_value_kind_is_invalid_input,
            capability_refusals_name_store_and_operation,
            hostile_strings_round_trip_and_match,
            one_megabyte_string_round_trips,
            nul_in_text_is_refused_or_kept,
            create_many_is_all_or_nothing,
            nearest_returns_the_most_similar_records
        );
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::conformance::run($setup().await, $crate::conformance::$case).await;
            }
        )*
    };
}

fn ctx() -> AccessContext {
    AccessContext::new("conformance-suite", Role::Service, Purpose::Operations)
        .expect("static context is valid")
}

fn repo(s: &Subject) -> Repository<Note> {
    Repository::new(Arc::clone(&s.store)).expect("Note is a valid entity")
}

async fn seed(r: &Repository<Note>, count: i64) -> Vec<Note> {
    let all = notes(count);
    for n in &all {
        r.create(&ctx(), n.clone()).await.expect("seed create");
    }
    all
}

async fn ranks(r: &Repository<Note>, filter: Filter) -> Vec<i64> {
    let page = r
        .list(&ctx(), &filter, &[SortKey::asc("rank")], Page::first(1000))
        .await
        .expect("list");
    page.items.iter().map(|n| n.rank).collect()
}

fn expected_ranks(all: &[Note], keep: impl Fn(&Note) -> bool) -> Vec<i64> {
    let mut v: Vec<i64> = all.iter().filter(|n| keep(n)).map(|n| n.rank).collect();
    v.sort();
    v
}

/// Whether the store filters and sorts on any field. A store that only reads by key must
/// refuse such queries with `Unsupported` naming itself (checked here), and the calling case
/// then ends: its remaining assertions are about results the store declares it cannot give.
async fn serves_secondary_queries(s: &Subject, r: &Repository<Note>) -> bool {
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

/// Every field kind survives create then get unchanged.
pub async fn create_then_get_round_trips_every_kind(s: Subject) {
    let r = repo(&s);
    for n in [note(1), note(4)] {
        let id = r.create(&ctx(), n.clone()).await.expect("create");
        assert_eq!(id, n.id);
        let back = r.get(&ctx(), &n.id).await.expect("get").expect("stored");
        assert!(
            back == n,
            "round trip changed the record: {back:?} != {n:?}"
        );
    }
}

/// `get` of an unknown id is `None`; `get_required` is `NotFound`.
pub async fn get_of_missing_id_is_none_and_required_is_not_found(s: Subject) {
    let r = repo(&s);
    let missing = uuid::Uuid::new_v4();
    assert!(r.get(&ctx(), &missing).await.expect("get").is_none());
    let err = r.get_required(&ctx(), &missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// A second create with the same id is a permanent `Conflict` and changes nothing.
pub async fn duplicate_id_is_a_permanent_conflict(s: Subject) {
    let r = repo(&s);
    let original = note(1);
    r.create(&ctx(), original.clone()).await.expect("create");
    let mut dup = note(2);
    dup.id = original.id;
    let err = r.create(&ctx(), dup).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(!err.is_temporary());
    assert_eq!(err.store(), Some(s.store.kind()));
    let back = r.get(&ctx(), &original.id).await.unwrap().unwrap();
    assert!(back == original);
}

/// A partial update changes the named fields only and increments the version.
pub async fn update_sets_only_named_fields_and_bumps_version(s: Subject) {
    let r = repo(&s);
    let n = note(3);
    r.create(&ctx(), n.clone()).await.unwrap();
    let changes = Changes::new()
        .set("title", "retitled")
        .set("score", Value::Null)
        .set("attrs", serde_json::json!({"changed": true}));
    assert!(r.update(&ctx(), &n.id, changes).await.expect("update"));
    let back = r.get(&ctx(), &n.id).await.unwrap().unwrap();
    let mut expected = n.clone();
    expected.title = "retitled".into();
    expected.score = None;
    expected.attrs = serde_json::json!({"changed": true});
    expected.version = n.version + 1;
    assert!(back == expected, "{back:?} != {expected:?}");
}

/// Updating an id that does not exist reports no match.
pub async fn update_of_missing_id_reports_no_match(s: Subject) {
    let r = repo(&s);
    let matched = r
        .update(
            &ctx(),
            &uuid::Uuid::new_v4(),
            Changes::new().set("title", "x"),
        )
        .await
        .expect("update");
    assert!(!matched);
}

/// An update expecting an old version is a `Conflict` and changes nothing.
pub async fn stale_version_is_a_conflict(s: Subject) {
    let r = repo(&s);
    let n = note(5);
    r.create(&ctx(), n.clone()).await.unwrap();
    let first = Changes::new().set("title", "first").expect_version(1);
    assert!(r.update(&ctx(), &n.id, first).await.unwrap());
    let stale = Changes::new().set("title", "stale").expect_version(1);
    let err = r.update(&ctx(), &n.id, stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let back = r.get(&ctx(), &n.id).await.unwrap().unwrap();
    assert_eq!((back.title.as_str(), back.version), ("first", 2));
    let fresh = Changes::new().set("title", "second").expect_version(2);
    assert!(r.update(&ctx(), &n.id, fresh).await.unwrap());
}

/// Delete reports whether a record matched.
pub async fn delete_reports_whether_it_matched(s: Subject) {
    let r = repo(&s);
    let n = note(6);
    r.create(&ctx(), n.clone()).await.unwrap();
    assert!(r.delete(&ctx(), &n.id).await.unwrap());
    assert!(!r.delete(&ctx(), &n.id).await.unwrap());
    assert!(r.get(&ctx(), &n.id).await.unwrap().is_none());
}

/// Count with and without a filter; exists by id.
pub async fn count_and_exists(s: Subject) {
    let r = repo(&s);
    let all = seed(&r, 10).await;
    assert!(r.exists(&ctx(), &all[0].id).await.unwrap());
    assert!(!r.exists(&ctx(), &uuid::Uuid::new_v4()).await.unwrap());
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    assert_eq!(r.count(&ctx(), &Filter::All).await.unwrap(), 10);
    let active = all.iter().filter(|n| n.active).count() as u64;
    assert_eq!(
        r.count(&ctx(), &field("active").eq(true)).await.unwrap(),
        active
    );
}

/// `eq` and `ne`; `ne` also matches records where the field is null.
pub async fn filter_eq_and_ne(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    let all = seed(&r, 12).await;
    assert_eq!(
        ranks(&r, field("owner").eq("owner-1")).await,
        expected_ranks(&all, |n| n.owner == "owner-1")
    );
    assert_eq!(
        ranks(&r, field("tag").ne("tag-1")).await,
        expected_ranks(&all, |n| n.tag.as_deref() != Some("tag-1"))
    );
    assert_eq!(ranks(&r, field("id").eq(all[3].id)).await, vec![3]);
    let ts = all[2].created_at;
    assert_eq!(ranks(&r, field("created_at").eq(ts)).await, vec![2]);
}

/// `lt`, `lte`, `gt`, `gte` on integers, floats, timestamps and text.
pub async fn filter_ranges(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    let all = seed(&r, 12).await;
    assert_eq!(
        ranks(&r, field("rank").lt(4_i64)).await,
        expected_ranks(&all, |n| n.rank < 4)
    );
    assert_eq!(
        ranks(&r, field("rank").lte(4_i64)).await,
        expected_ranks(&all, |n| n.rank <= 4)
    );
    assert_eq!(
        ranks(&r, field("rank").gt(8_i64)).await,
        expected_ranks(&all, |n| n.rank > 8)
    );
    assert_eq!(
        ranks(&r, field("rank").gte(8_i64)).await,
        expected_ranks(&all, |n| n.rank >= 8)
    );
    // Null scores never satisfy a range comparison.
    assert_eq!(
        ranks(&r, field("score").gte(3.0)).await,
        expected_ranks(&all, |n| n.score.is_some_and(|v| v >= 3.0))
    );
    let cut = all[5].created_at;
    assert_eq!(
        ranks(&r, field("created_at").lt(cut)).await,
        expected_ranks(&all, |n| n.created_at < cut)
    );
    assert_eq!(
        ranks(&r, field("title").gte("title 0010")).await,
        vec![10, 11]
    );
}

/// `in`, including an empty list (matches nothing) and a list holding null.
pub async fn filter_in(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    let all = seed(&r, 9).await;
    assert_eq!(
        ranks(&r, field("rank").is_in([1_i64, 3, 5, 99])).await,
        vec![1, 3, 5]
    );
    assert!(ranks(&r, field("rank").is_in(Vec::<i64>::new()))
        .await
        .is_empty());
    let with_null = Filter::In("tag".into(), vec![Value::Text("tag-0".into()), Value::Null]);
    assert_eq!(
        ranks(&r, with_null).await,
        expected_ranks(&all, |n| n.tag.as_deref() != Some("tag-1"))
    );
}

/// `is_null`, `is_not_null`, and `eq(Null)` as "is null".
pub async fn filter_null_checks(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    let all = seed(&r, 9).await;
    let nulls = expected_ranks(&all, |n| n.score.is_none());
    assert_eq!(ranks(&r, field("score").is_null()).await, nulls);
    assert_eq!(ranks(&r, field("score").eq(Value::Null)).await, nulls);
    assert_eq!(
        ranks(&r, field("score").is_not_null()).await,
        expected_ranks(&all, |n| n.score.is_some())
    );
}

/// `and`, `or`, `not`, with `not` as plain negation even over null fields.
pub async fn filter_boolean_logic(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    let all = seed(&r, 12).await;
    let f = field("active").eq(true).and(field("rank").gt(5_i64));
    assert_eq!(
        ranks(&r, f).await,
        expected_ranks(&all, |n| n.active && n.rank > 5)
    );
    let f = field("rank").eq(1_i64).or(field("rank").eq(7_i64));
    assert_eq!(ranks(&r, f).await, vec![1, 7]);
    let f = field("tag").eq("tag-1").not();
    assert_eq!(
        ranks(&r, f).await,
        expected_ranks(&all, |n| n.tag.as_deref() != Some("tag-1"))
    );
    let f = field("score")
        .gt(2.0)
        .not()
        .and(field("active").eq(false).or(field("rank").lt(3_i64)));
    let keep = |n: &Note| !n.score.is_some_and(|v| v > 2.0) && (!n.active || n.rank < 3);
    assert_eq!(ranks(&r, f).await, expected_ranks(&all, keep));
    assert_eq!(ranks(&r, Filter::And(vec![])).await.len(), 12);
    assert!(ranks(&r, Filter::Or(vec![])).await.is_empty());
}

/// `starts_with` matches literally: `%`, `_` and `\` are not wildcards.
pub async fn filter_prefix_is_literal(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    let titles = ["50% off", "50_ off", "500 off", "5\\0 off", "other"];
    for (i, t) in titles.iter().enumerate() {
        let mut n = note(i as i64);
        n.title = (*t).to_owned();
        r.create(&ctx(), n).await.unwrap();
    }
    if !s.store.capabilities().supports(Capability::PrefixFilter) {
        let err = r
            .count(&ctx(), &field("title").starts_with("50"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        return;
    }
    assert_eq!(ranks(&r, field("title").starts_with("50%")).await, vec![0]);
    assert_eq!(ranks(&r, field("title").starts_with("50_")).await, vec![1]);
    assert_eq!(ranks(&r, field("title").starts_with("5\\")).await, vec![3]);
    assert_eq!(
        ranks(&r, field("title").starts_with("50")).await,
        vec![0, 1, 2]
    );
    assert_eq!(ranks(&r, field("title").starts_with("")).await.len(), 5);
}

/// Ascending and descending sorts, several keys, nulls as the smallest value.
pub async fn sort_ascending_descending_and_nulls(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    let all = seed(&r, 10).await;
    let list = |sort: Vec<SortKey>| {
        let r = r.clone();
        async move {
            let page = r
                .list(&ctx(), &Filter::All, &sort, Page::first(100))
                .await
                .unwrap();
            page.items.iter().map(|n| n.rank).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(vec![SortKey::desc("rank")]).await,
        (0..10).rev().collect::<Vec<_>>()
    );
    let mut expected = all.clone();
    expected.sort_by(|a, b| {
        let score = |n: &Note| n.score.unwrap_or(f64::NEG_INFINITY);
        score(a).total_cmp(&score(b)).then(b.rank.cmp(&a.rank))
    });
    let got = list(vec![SortKey::asc("score"), SortKey::desc("rank")]).await;
    assert_eq!(got, expected.iter().map(|n| n.rank).collect::<Vec<_>>());
    let got = list(vec![SortKey::desc("score"), SortKey::asc("rank")]).await;
    expected.sort_by(|a, b| {
        let score = |n: &Note| n.score.unwrap_or(f64::NEG_INFINITY);
        score(b).total_cmp(&score(a)).then(a.rank.cmp(&b.rank))
    });
    assert_eq!(got, expected.iter().map(|n| n.rank).collect::<Vec<_>>());
}

/// Limit and offset pages; a last page has no next cursor.
pub async fn limit_and_offset_pages(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    seed(&r, 10).await;
    let sort = [SortKey::asc("rank")];
    let first = r
        .list(&ctx(), &Filter::All, &sort, Page::first(4))
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|n| n.rank).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(first.next.is_some());
    if !s
        .store
        .capabilities()
        .supports(Capability::OffsetPagination)
    {
        let err = r
            .list(&ctx(), &Filter::All, &sort, Page::offset(4, 4))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        return;
    }
    let second = r
        .list(&ctx(), &Filter::All, &sort, Page::offset(4, 4))
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|n| n.rank).collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    let last = r
        .list(&ctx(), &Filter::All, &sort, Page::offset(8, 4))
        .await
        .unwrap();
    assert_eq!(
        last.items.iter().map(|n| n.rank).collect::<Vec<_>>(),
        [8, 9]
    );
    assert!(last.next.is_none());
}

/// Walking keyset pages returns every record exactly once, in order, even with ties and
/// nulls in the sort key.
pub async fn keyset_pages_cover_everything_once(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    seed(&r, 23).await;
    let filter = field("rank").ne(7_i64);
    for sort in [
        vec![SortKey::desc("score")],
        vec![SortKey::asc("score"), SortKey::desc("owner")],
        vec![SortKey::asc("tag")],
    ] {
        let everything = r
            .list(&ctx(), &filter, &sort, Page::first(100))
            .await
            .unwrap();
        let expected: Vec<_> = everything.items.iter().map(|n| n.id).collect();
        assert_eq!(expected.len(), 22);
        let mut walked = Vec::new();
        let mut page = r
            .list(&ctx(), &filter, &sort, Page::first(5))
            .await
            .unwrap();
        loop {
            walked.extend(page.items.iter().map(|n| n.id));
            match page.next {
                Some(cursor) => {
                    page = r
                        .list(&ctx(), &filter, &sort, Page::after(cursor, 5))
                        .await
                        .unwrap()
                }
                None => break,
            }
        }
        assert_eq!(walked, expected, "keyset walk differs for sort {sort:?}");
    }
}

/// A garbled cursor, or one made for another sort, is `InvalidInput`.
pub async fn bad_cursor_is_invalid_input(s: Subject) {
    let r = repo(&s);
    if !serves_secondary_queries(&s, &r).await {
        return;
    }
    seed(&r, 5).await;
    let page = r
        .list(
            &ctx(),
            &Filter::All,
            &[SortKey::asc("rank")],
            Page::first(2),
        )
        .await
        .unwrap();
    let cursor = page.next.expect("more pages");
    let other_sort = r
        .list(
            &ctx(),
            &Filter::All,
            &[SortKey::asc("title")],
            Page::after(cursor, 2),
        )
        .await;
    assert_eq!(other_sort.unwrap_err().kind(), ErrorKind::InvalidInput);
    let garbage = udl_core::Cursor::from_string("not-a-cursor'; --");
    let err = r
        .list(&ctx(), &Filter::All, &[], Page::after(garbage, 2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// Unknown field names in filters, sorts and updates are `InvalidInput` and never echoed.
pub async fn unknown_fields_are_invalid_input(s: Subject) {
    let r = repo(&s);
    let n = note(1);
    r.create(&ctx(), n.clone()).await.unwrap();
    let hostile = "title\" = '' OR 1=1; --";
    let errors = [
        r.count(&ctx(), &field(hostile).eq("x")).await.unwrap_err(),
        r.list(
            &ctx(),
            &Filter::All,
            &[SortKey::asc(hostile)],
            Page::first(5),
        )
        .await
        .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set(hostile, "x"))
            .await
            .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("$set", "x"))
            .await
            .unwrap_err(),
        r.count(&ctx(), &field("attrs.nested").eq("x"))
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!err.to_string().contains("1=1"), "{err}");
    }
    assert!(r.get(&ctx(), &n.id).await.unwrap().unwrap() == n);
}

/// Values of the wrong kind, updates of the id or version, bad page sizes, NaN vector
/// components and filters on vectors are refused.
pub async fn wrong_value_kind_is_invalid_input(s: Subject) {
    let r = repo(&s);
    let n = note(1);
    r.create(&ctx(), n.clone()).await.unwrap();
    let errors = [
        r.count(&ctx(), &field("rank").eq("one")).await.unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("active", 1_i64))
            .await
            .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("title", Value::Null))
            .await
            .unwrap_err(),
        r.update(
            &ctx(),
            &n.id,
            Changes::new().set("id", uuid::Uuid::new_v4()),
        )
        .await
        .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new().set("version", 9_i64))
            .await
            .unwrap_err(),
        r.update(&ctx(), &n.id, Changes::new()).await.unwrap_err(),
        r.list(&ctx(), &Filter::All, &[], Page::first(0))
            .await
            .unwrap_err(),
        r.list(&ctx(), &Filter::All, &[], Page::first(1_000_000))
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    assert!(r.get(&ctx(), &n.id).await.unwrap().unwrap() == n);
    let mut nan = note(2);
    nan.embedding = Some(vec![0.5, f32::NAN]);
    let err = r.create(&ctx(), nan.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        r.get(&ctx(), &nan.id).await.unwrap().is_none(),
        "nothing stored"
    );
    let err = r
        .count(&ctx(), &field("embedding").eq(vec![0.5_f32]))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "vectors are not filterable"
    );
}

/// Operations outside the store's capabilities are `Unsupported`, naming store and operation;
/// operations inside them work.
pub async fn capability_refusals_name_store_and_operation(s: Subject) {
    let r = repo(&s);
    let caps = s.store.capabilities();
    let n = note(1);
    let ttl = r
        .create_with_ttl(&ctx(), n.clone(), Duration::from_secs(3600))
        .await;
    if caps.supports(Capability::Ttl) {
        ttl.expect("TTL insert on a store that declares TTL");
        assert!(r.exists(&ctx(), &n.id).await.unwrap());
    } else {
        let err = ttl.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        let text = err.to_string();
        assert!(
            text.contains(s.store.kind().name()) && text.contains("insert_with_ttl"),
            "{text}"
        );
        assert!(
            !r.exists(&ctx(), &n.id).await.unwrap(),
            "refused insert must write nothing"
        );
    }
    if !caps.supports(Capability::VectorSearch) {
        let err = s
            .store
            .nearest(&ctx(), Note::meta(), "score", &[0.5], 3, &Filter::All)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("nearest"), "{err}");
    }
    assert_ne!(
        s.store.kind(),
        StoreKind::Memory,
        "conformance must run on a real store"
    );
}

/// Hostile strings are stored, read back unchanged and matched by equality, as single
/// records and in bulk.
pub async fn hostile_strings_round_trip_and_match(s: Subject) {
    let r = repo(&s);
    let mut created = Vec::new();
    for (i, text) in hostile_strings().into_iter().enumerate() {
        let mut n = note(i as i64);
        n.title = text.clone();
        n.body = text.clone();
        n.attrs = serde_json::json!({ "text": text, "k'\"ey; --": [text] });
        r.create(&ctx(), n.clone()).await.expect("create hostile");
        created.push(n);
    }
    for n in &created {
        let back = r.get(&ctx(), &n.id).await.unwrap().unwrap();
        assert!(back == *n, "hostile value changed: {:?}", n.title);
        if s.store
            .capabilities()
            .supports(Capability::SecondaryFilters)
        {
            let found = ranks(&r, field("title").eq(n.title.as_str())).await;
            assert_eq!(found, vec![n.rank], "equality on {:?}", n.title);
        }
    }
    if s.store.capabilities().supports(Capability::BulkInsert) {
        let bulk: Vec<Note> = created
            .iter()
            .map(|n| Note {
                id: uuid::Uuid::new_v4(),
                rank: n.rank + 1000,
                ..n.clone()
            })
            .collect();
        r.create_many(&ctx(), bulk.clone())
            .await
            .expect("bulk hostile");
        for n in &bulk {
            assert!(
                r.get(&ctx(), &n.id).await.unwrap().unwrap() == *n,
                "bulk changed {:?}",
                n.title
            );
        }
    }
}

/// A 1 MB string is stored and read back unchanged.
pub async fn one_megabyte_string_round_trips(s: Subject) {
    let r = repo(&s);
    let mut n = note(1);
    n.body = "fake clinical note ✓ ".repeat((1 << 20) / 16);
    assert!(n.body.len() >= 1 << 20);
    r.create(&ctx(), n.clone()).await.unwrap();
    let back = r.get(&ctx(), &n.id).await.unwrap().unwrap();
    assert_eq!(back.body.len(), n.body.len());
    assert!(back == n);
}

/// A NUL character is either kept (stores that can hold it) or refused with `InvalidInput`
/// and nothing written, alone or in a batch.
pub async fn nul_in_text_is_refused_or_kept(s: Subject) {
    let r = repo(&s);
    let mut n = note(1);
    n.body = "before\0after".into();
    let single = r.create(&ctx(), n.clone()).await;
    let mut batch = notes(3);
    batch[1].title = "nul\0inside".into();
    let bulk = if s.store.capabilities().supports(Capability::BulkInsert) {
        Some(r.create_many(&ctx(), batch.clone()).await)
    } else {
        None
    };
    if s.refuses_nul_in_text {
        let err = single.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!err.to_string().contains("before"), "{err}");
        if let Some(bulk) = bulk {
            assert_eq!(bulk.unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        assert_eq!(
            r.count(&ctx(), &Filter::All).await.unwrap(),
            0,
            "nothing may be written"
        );
        let err = r
            .count(&ctx(), &field("title").eq("a\0b"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    } else {
        single.expect("store keeps NUL");
        assert!(r.get(&ctx(), &n.id).await.unwrap().unwrap() == n);
    }
}

/// `create_many` writes every record, or none when one of them conflicts.
pub async fn create_many_is_all_or_nothing(s: Subject) {
    let r = repo(&s);
    if !s.store.capabilities().supports(Capability::BulkInsert) {
        let err = r.create_many(&ctx(), notes(2)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        return;
    }
    let batch = notes(1000);
    assert_eq!(r.create_many(&ctx(), batch.clone()).await.unwrap(), 1000);
    assert_eq!(r.count(&ctx(), &Filter::All).await.unwrap(), 1000);
    assert!(r.get(&ctx(), &batch[999].id).await.unwrap().unwrap() == batch[999]);
    let mut clash = notes(50);
    clash[25].id = batch[0].id;
    let err = r.create_many(&ctx(), clash.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        r.count(&ctx(), &Filter::All).await.unwrap(),
        1000,
        "a failed batch writes nothing"
    );
    assert!(r.get(&ctx(), &clash[0].id).await.unwrap().is_none());
    assert_eq!(r.create_many(&ctx(), vec![]).await.unwrap(), 0);
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Similarity search returns exactly the `k` most similar records with a vector, best
/// first, within the prefilter; stores without it refuse with `Unsupported`.
pub async fn nearest_returns_the_most_similar_records(s: Subject) {
    let r = repo(&s);
    let all = seed(&r, 24).await;
    let query = [1.0_f32, -0.5, 0.25];
    let active_only = field("active").eq(true);
    let outcome = r
        .nearest(&ctx(), "embedding", &query, 4, &active_only)
        .await;
    if !s.store.capabilities().supports(Capability::VectorSearch) {
        assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Unsupported);
        return;
    }
    let mut expected: Vec<(i64, f32)> = all
        .iter()
        .filter(|n| n.active)
        .filter_map(|n| n.embedding.as_ref().map(|e| (n.rank, cosine(&query, e))))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    expected.truncate(4);
    let found = outcome.expect("nearest");
    let got: Vec<i64> = found.iter().map(|(n, _)| n.rank).collect();
    assert_eq!(
        got,
        expected.iter().map(|(rank, _)| *rank).collect::<Vec<_>>()
    );
    for ((_, score), (_, want)) in found.iter().zip(&expected) {
        assert!((score - want).abs() < 1e-5, "score {score} vs {want}");
    }
    let err = r
        .nearest(&ctx(), "embedding", &[1.0, 2.0], 4, &Filter::All)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "wrong dimension: {err}"
    );
    let err = r
        .nearest(&ctx(), "embedding", &[f32::NAN, 0.0, 1.0], 4, &Filter::All)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = r
        .nearest(&ctx(), "title", &query, 4, &Filter::All)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
