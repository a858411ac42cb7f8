//! MongoDB-specific behaviour on the real server: capabilities, errors, hostile documents.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use udl_config::StoreConfig as _;
use udl_core::{
    field, AccessContext, Capability, Changes, ErrorKind, Filter, Purpose, RecordStore, Repository,
    Role,
};
use udl_mongo::MongoConfig;
use udl_mongo::MongoStore;
use udl_testkit::fixtures::{note, notes, Note};
use udl_testkit::Harness;

fn ctx() -> AccessContext {
    AccessContext::new("mongo-test", Role::Service, Purpose::Operations).unwrap()
}

fn repo(h: &common::MongoHarness) -> Repository<Note> {
    h.store.repository().unwrap()
}

#[tokio::test]
async fn mongodb_capabilities_are_detected() {
    let h = common::MongoHarness::new().await;
    let info = h.store.server().clone();
    assert!(!info.ferretdb, "the local server is MongoDB: {info:?}");
    assert!(
        info.transactions && info.ttl_indexes,
        "a replica set: {info:?}"
    );
    // Community MongoDB has no $vectorSearch; similarity stays udl's own.
    assert!(!info.native_vector_search);
    let caps = h.store.records().capabilities();
    assert!(caps.supports(Capability::Transactions));
    assert!(caps.supports(Capability::BulkInsert) && caps.supports(Capability::VectorSearch));
    h.teardown().await;
}

#[tokio::test]
async fn ferretdb_capabilities_are_detected_not_faked() {
    let h = common::MongoHarness::ferretdb().await;
    let info = h.store.server().clone();
    assert!(info.ferretdb, "the second target is FerretDB: {info:?}");
    assert!(!info.transactions && !info.ttl_indexes && !info.native_vector_search);
    let caps = h.store.records().capabilities();
    for missing in [Capability::Transactions, Capability::Ttl] {
        assert!(
            !caps.supports(missing),
            "{missing:?} must be off on FerretDB"
        );
    }
    assert!(caps.supports(Capability::BulkInsert) && caps.supports(Capability::Count));
    // Similarity is computed by udl (a bounded exact scan), not by the server.
    assert!(caps.supports(Capability::VectorSearch));
    assert!(h.store.health(Duration::from_secs(2)).await.is_ok());
    h.teardown().await;
}

#[tokio::test]
async fn unreachable_server_is_temporary_unavailable() {
    let vars = [
        (
            "UDL__MONGO__URL",
            "mongodb://fake-user:fake-s3cret@127.0.0.1:1/",
        ),
        ("UDL__MONGO__POOL__ACQUIRE_TIMEOUT", "500ms"),
    ];
    let config =
        MongoConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap();
    let err = MongoStore::connect(&config)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(!format!("{err} {err:?}").contains("fake-s3cret"));
}

/// Run on both targets: the server's capabilities take it down different paths.
async fn operator_keys_and_deep_json_are_refused_and_nothing_is_stored_on(h: common::MongoHarness) {
    let r = repo(&h);
    let mut bad_key = note(1);
    bad_key.attrs = serde_json::json!({"$where": "sleep(1000)"});
    let mut dotted = note(2);
    dotted.attrs = serde_json::json!({"a": {"b.c": 1}});
    let mut deep = note(3);
    for _ in 0..80 {
        deep.attrs = serde_json::json!([deep.attrs]);
    }
    for n in [bad_key, dotted, deep] {
        let id = n.id;
        let err = r.create(&ctx(), n).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!err.to_string().contains("sleep"), "{err}");
        assert!(r.get(&ctx(), &id).await.unwrap().is_none());
    }
    let n = note(4);
    r.create(&ctx(), n.clone()).await.unwrap();
    let err = r
        .update(
            &ctx(),
            &n.id,
            Changes::new().set("attrs", serde_json::json!({"$set": {"x": 1}})),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(r.get(&ctx(), &n.id).await.unwrap().unwrap() == n);
    h.teardown().await;
}

/// Run on both targets: the server's capabilities take it down different paths.
async fn oversized_documents_are_refused_before_sending_on(h: common::MongoHarness) {
    let r = repo(&h);
    let mut big = note(1);
    big.body = "x".repeat(17 * 1024 * 1024);
    let err = r.create(&ctx(), big.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    let mut batch = notes(5);
    batch[3] = big;
    let err = r.create_many(&ctx(), batch).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        r.count(&ctx(), &Filter::All).await.unwrap(),
        0,
        "nothing stored half-way"
    );
    h.teardown().await;
}

/// Run on both targets: the server's capabilities take it down different paths.
async fn bulk_conflict_names_the_refused_documents_without_values_on(h: common::MongoHarness) {
    let r = repo(&h);
    let mut existing = note(1);
    existing.title = "fake-unique-title".into();
    r.create(&ctx(), existing.clone()).await.unwrap();
    let mut batch = notes(6);
    batch[2].id = existing.id;
    batch[4].id = existing.id;
    let err = r.create_many(&ctx(), batch).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("2 of 6 documents refused (indices 2, 4"),
        "{text}"
    );
    assert!(!text.contains(&existing.id.to_string()), "{text}");
    assert_eq!(
        r.count(&ctx(), &Filter::All).await.unwrap(),
        1,
        "the batch was undone"
    );
    let store: Arc<dyn RecordStore> = h.store.records();
    assert_eq!(store.kind(), udl_core::StoreKind::MONGO);
    h.teardown().await;
}

fn direction(n: i64) -> Vec<f32> {
    let angle = n as f32 * 2.399_963; // golden angle: every note points somewhere else
    vec![angle.cos(), angle.sin(), 0.01 * (n % 7) as f32]
}

#[tokio::test]
async fn above_the_exact_limit_the_index_answers_and_follows_writes() {
    let h = common::MongoHarness::new().await;
    let r = repo(&h);
    let over = 2 * udl_mongo::EXACT_SCAN_LIMIT as i64 + 200;
    let batch: Vec<Note> = (0..over)
        .map(|n| Note {
            embedding: Some(direction(n)),
            ..note(n)
        })
        .collect();
    r.create_many(&ctx(), batch.clone()).await.unwrap();
    let active = field("active").eq(true);
    let query = [0.3_f32, 0.9, 0.05];
    let expected: Vec<i64> = {
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut scored: Vec<(i64, f32)> = batch
            .iter()
            .filter(|n| n.active)
            .map(|n| {
                let e = n.embedding.as_ref().unwrap();
                let dot: f32 = e.iter().zip(&query).map(|(a, b)| a * b).sum();
                (n.rank, dot / (norm(e) * norm(&query)))
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().take(5).map(|(rank, _)| rank).collect()
    };
    let found = r
        .nearest(&ctx(), "embedding", &query, 5, &active)
        .await
        .unwrap();
    let got: Vec<i64> = found.iter().map(|(n, _)| n.rank).collect();
    assert_eq!(
        got, expected,
        "index + exact re-ranking finds the true top 5"
    );
    assert!(found.iter().all(|(n, _)| n.active), "prefilter holds");

    // With the index built, a prefilter few of its first proposals pass (ten notes out of
    // thousands) still gets the exact answer among the notes it keeps.
    let few: Vec<i64> = (0..10).map(|n| n * 97).collect();
    let selective = field("rank").is_in(few.clone());
    let mut expected: Vec<(i64, f32)> = batch
        .iter()
        .filter(|n| few.contains(&n.rank))
        .map(|n| {
            let e = n.embedding.as_ref().unwrap();
            let dot: f32 = e.iter().zip(&query).map(|(a, b)| a * b).sum();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            (n.rank, dot / (norm(e) * norm(&query)))
        })
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let found = r
        .nearest(&ctx(), "embedding", &query, 3, &selective)
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|(n, _)| n.rank).collect::<Vec<_>>(),
        expected
            .iter()
            .take(3)
            .map(|(rank, _)| *rank)
            .collect::<Vec<_>>()
    );

    let mut exact_match = note(over + 2);
    exact_match.active = true;
    exact_match.embedding = Some(query.to_vec());
    r.create(&ctx(), exact_match.clone()).await.unwrap();
    let found = r
        .nearest(&ctx(), "embedding", &query, 1, &active)
        .await
        .unwrap();
    assert_eq!(found[0].0.id, exact_match.id, "a write reaches the index");
    assert!(found[0].1 > 0.999);
    r.delete(&ctx(), &exact_match.id).await.unwrap();
    let found = r
        .nearest(&ctx(), "embedding", &query, 1, &active)
        .await
        .unwrap();
    assert_ne!(found[0].0.id, exact_match.id, "a delete reaches the index");
    let err = r
        .nearest(&ctx(), "embedding", &[1.0, 0.0], 3, &active)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    h.teardown().await;
}

#[tokio::test]
async fn bulk_conflict_names_the_refused_documents_without_values_on_mongodb() {
    bulk_conflict_names_the_refused_documents_without_values_on(common::MongoHarness::new().await)
        .await;
}

#[tokio::test]
async fn bulk_conflict_names_the_refused_documents_without_values_on_ferretdb() {
    bulk_conflict_names_the_refused_documents_without_values_on(
        common::MongoHarness::ferretdb().await,
    )
    .await;
}

#[tokio::test]
async fn operator_keys_and_deep_json_are_refused_and_nothing_is_stored_on_mongodb() {
    operator_keys_and_deep_json_are_refused_and_nothing_is_stored_on(
        common::MongoHarness::new().await,
    )
    .await;
}

#[tokio::test]
async fn operator_keys_and_deep_json_are_refused_and_nothing_is_stored_on_ferretdb() {
    operator_keys_and_deep_json_are_refused_and_nothing_is_stored_on(
        common::MongoHarness::ferretdb().await,
    )
    .await;
}

#[tokio::test]
async fn oversized_documents_are_refused_before_sending_on_mongodb() {
    oversized_documents_are_refused_before_sending_on(common::MongoHarness::new().await).await;
}

#[tokio::test]
async fn oversized_documents_are_refused_before_sending_on_ferretdb() {
    oversized_documents_are_refused_before_sending_on(common::MongoHarness::ferretdb().await).await;
}

/// Polls `done` until it holds, failing after `within`.
async fn until<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    done: impl Fn() -> F,
) {
    let deadline = std::time::Instant::now() + within;
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_record_with_a_ttl_is_gone_at_its_expiry_and_then_deleted_by_the_server() {
    let h = common::MongoHarness::new().await;
    let r = repo(&h);
    let short = note(1);
    let kept = note(2);
    r.create_with_ttl(&ctx(), short.clone(), Duration::from_secs(1))
        .await
        .unwrap();
    r.create(&ctx(), kept.clone()).await.unwrap();
    assert!(r.get(&ctx(), &short.id).await.unwrap().is_some());
    assert_eq!(r.count(&ctx(), &Filter::All).await.unwrap(), 2);

    until(Duration::from_secs(10), "the expiry", || async {
        r.get(&ctx(), &short.id).await.unwrap().is_none()
    })
    .await;
    // From then on no read sees it, whether or not the server has deleted it yet.
    assert!(!r.exists(&ctx(), &short.id).await.unwrap());
    assert_eq!(r.count(&ctx(), &Filter::All).await.unwrap(), 1);
    let page = r
        .list(&ctx(), &Filter::All, &[], udl_core::Page::first(10))
        .await
        .unwrap();
    assert_eq!(page.items, vec![kept.clone()]);
    // Its id is free again at once.
    r.create(&ctx(), short.clone()).await.unwrap();
    assert!(r.delete(&ctx(), &short.id).await.unwrap());

    // The server's TTL monitor removes the document itself.
    let again = note(3);
    r.create_with_ttl(&ctx(), again.clone(), Duration::from_secs(1))
        .await
        .unwrap();
    let raw = h
        .store
        .database()
        .collection::<mongodb::bson::Document>("conformance_notes");
    until(Duration::from_secs(30), "the server's deletion", || async {
        raw.count_documents(mongodb::bson::doc! {}).await.unwrap() == 1
    })
    .await;
    let indexes = raw.list_index_names().await.unwrap();
    assert!(
        indexes.contains(&"udl_expires_at".to_owned()),
        "{indexes:?}"
    );
    h.teardown().await;
}
