//! The platform's MongoDB models round-trip on the real server.

mod common;

use chrono::{TimeZone, Utc};
use udl_core::{field, AccessContext, Entity, Json, Page, Purpose, Role, SortKey};
use udl_mongo::models::*;
use udl_mongo::MongoStore;
use udl_testkit::Harness;
use uuid::Uuid;

fn ctx() -> AccessContext {
    AccessContext::new("models-test", Role::Clinician, Purpose::Treatment).unwrap()
}

fn at(minute: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000 + minute * 60, 250_000_000)
        .unwrap()
}

async fn round_trip<T: Entity + Clone + PartialEq + std::fmt::Debug>(store: &MongoStore, value: T) {
    let repo = store.repository::<T>().unwrap();
    let id = repo.create(&ctx(), value.clone()).await.expect("create");
    let back = repo.get(&ctx(), &id).await.expect("get").expect("stored");
    assert!(back == value, "{} changed: {back:?}", T::meta().name);
}

fn chunk(document_id: Uuid, index: i64) -> DocumentChunk {
    DocumentChunk {
        id: Uuid::new_v4(),
        document_id,
        chunk_index: index,
        text: format!("fake chunk {index} about breathing exercises"),
        embedding: vec![0.125 * index as f32, -0.5, 0.75, 1.0],
        embedding_model: "fake-embed-4".into(),
        dimension: 4,
        content_type: "playbook".into(),
        metadata: serde_json::json!({"page": index + 1, "lang": "en"}),
        source_media_asset_id: Some(Uuid::new_v4()),
        created_at: at(index),
    }
}

#[tokio::test]
async fn every_model_round_trips() {
    let h = common::MongoHarness::new().await;
    round_trip(&h.store, chunk(Uuid::new_v4(), 0)).await;
    round_trip(
        &h.store,
        TherapeuticContent {
            id: Uuid::new_v4(),
            slug: "box-breathing".into(),
            title: "Box breathing".into(),
            kind: ContentKind::Playbook,
            body: "Breathe in for four counts.".into(),
            steps: Json(vec![PlaybookStep {
                title: "In".into(),
                instruction: "Count to four".into(),
            }]),
            tags: Json(vec!["anxiety".into(), "breathing".into()]),
            content_version: 3,
            published: true,
            updated_at: at(0),
            version: 1,
        },
    )
    .await;
    // Models with encrypted fields round-trip through the privacy layer
    // (`udl/tests/shipped_models.rs`); this store alone refuses them rather than keep them in
    // the clear.
    for refused in [
        h.store.repository::<Conversation>().err(),
        h.store.repository::<PatientInteractionLog>().err(),
        h.store.repository::<AiResponse>().err(),
    ] {
        let err = refused.expect("refused below the privacy layer");
        assert_eq!(err.kind(), udl_core::ErrorKind::Config, "{err}");
    }
    h.teardown().await;
}

#[tokio::test]
async fn chunks_of_a_document_list_in_order() {
    let h = common::MongoHarness::new().await;
    let chunks = h.store.repository::<DocumentChunk>().unwrap();
    let document = Uuid::new_v4();
    let batch: Vec<DocumentChunk> = (0..7).rev().map(|i| chunk(document, i)).collect();
    chunks.create_many(&ctx(), batch).await.unwrap();
    chunks
        .create(&ctx(), chunk(Uuid::new_v4(), 0))
        .await
        .unwrap();
    let page = chunks
        .list(
            &ctx(),
            &field("document_id").eq(document),
            &[SortKey::asc("chunk_index")],
            Page::first(20),
        )
        .await
        .unwrap();
    let order: Vec<i64> = page.items.iter().map(|c| c.chunk_index).collect();
    assert_eq!(order, (0..7).collect::<Vec<_>>());
    h.teardown().await;
}

#[test]
fn phi_is_classified_and_hidden_from_debug() {
    for meta in [
        DocumentChunk::meta(),
        Conversation::meta(),
        PatientInteractionLog::meta(),
        AiResponse::meta(),
    ] {
        assert!(meta.has_phi(), "{}", meta.name);
        meta.validate().unwrap();
    }
    assert!(!TherapeuticContent::meta().has_phi());
    let m = Message {
        role: MessageRole::Patient,
        text: "fake secret feeling".into(),
        at: at(0),
    };
    assert!(!format!("{m:?}").contains("fake secret"));
}
