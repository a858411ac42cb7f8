//! Create, read, update, delete, count and exists.

use super::prelude::*;

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
