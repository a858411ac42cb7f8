//! The platform's MongoDB models round-trip on the real server.

use crate::common;

use chrono::{TimeZone, Utc};
use udl_core::{AccessContext, Entity, Json, Purpose, Role};
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

/// Run on both targets: the server's capabilities take it down different paths.
async fn every_model_round_trips_on(h: common::MongoHarness) {
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
            media_asset_id: None,
            content_version: 3,
            published: true,
            updated_at: at(0),
            version: 1,
        },
    )
    .await;
    // Models holding PII or PHI round-trip through the privacy layers
    // (`udl/tests/integration/shipped_models.rs`); this store alone refuses them rather than serve them
    // unaudited and in the clear.
    for refused in [
        h.store.repository::<DocumentChunk>().err(),
        h.store.repository::<Conversation>().err(),
        h.store.repository::<PatientInteractionLog>().err(),
        h.store.repository::<AiResponse>().err(),
    ] {
        let err = refused.expect("refused below the privacy layer");
        assert_eq!(err.kind(), udl_core::ErrorKind::Config, "{err}");
    }
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

#[tokio::test]
async fn every_model_round_trips_on_mongodb() {
    every_model_round_trips_on(common::MongoHarness::new().await).await;
}

#[tokio::test]
async fn every_model_round_trips_on_ferretdb() {
    every_model_round_trips_on(common::MongoHarness::ferretdb().await).await;
}
