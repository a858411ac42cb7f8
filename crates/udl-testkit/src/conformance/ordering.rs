//! Sorting, offset and keyset pages, cursors.

use super::prelude::*;

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
