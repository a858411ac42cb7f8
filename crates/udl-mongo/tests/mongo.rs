//! MongoDB-specific behaviour on the real server: capabilities, errors, hostile documents.

mod common;

use std::sync::Arc;
use std::time::Duration;

use udl_config::UdlConfig;
use udl_core::{
    AccessContext, Capability, Changes, ErrorKind, Filter, Purpose, RecordStore, Repository, Role,
};
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
async fn ferretdb_capabilities_are_detected_not_faked() {
    let h = common::MongoHarness::new().await;
    let info = h.store.server().clone();
    assert!(info.ferretdb, "the local server is FerretDB: {info:?}");
    assert!(!info.transactions);
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
    let config = UdlConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v.to_owned())))
        .unwrap()
        .mongo
        .unwrap();
    let err = MongoStore::connect(&config)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(!format!("{err} {err:?}").contains("fake-s3cret"));
}

#[tokio::test]
async fn operator_keys_and_deep_json_are_refused_and_nothing_is_stored() {
    let h = common::MongoHarness::new().await;
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

#[tokio::test]
async fn oversized_documents_are_refused_before_sending() {
    let h = common::MongoHarness::new().await;
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

#[tokio::test]
async fn bulk_conflict_names_the_refused_documents_without_values() {
    let h = common::MongoHarness::new().await;
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
    assert_eq!(store.kind(), udl_core::StoreKind::Mongo);
    h.teardown().await;
}

#[tokio::test]
async fn similarity_search_refuses_an_unbounded_scan() {
    let h = common::MongoHarness::new().await;
    let coll = h
        .store
        .database()
        .collection::<mongodb::bson::Document>("conformance_notes");
    let over = udl_mongo::MAX_EXACT_CANDIDATES as usize + 1;
    let docs: Vec<mongodb::bson::Document> = (0..over)
        .map(|i| mongodb::bson::doc! { "_id": i as i64, "embedding": [1.0, 0.5, i as f64] })
        .collect();
    coll.insert_many(docs).await.unwrap();
    let err = repo(&h)
        .nearest(&ctx(), "embedding", &[1.0, 0.0, 0.0], 3, &Filter::All)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("narrow the prefilter"), "{err}");
    h.teardown().await;
}
