//! Filters: equality, ranges, sets, nulls, boolean logic, literal prefixes.

use super::prelude::*;

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
