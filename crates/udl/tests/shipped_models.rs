//! The platform's own models with encrypted fields, through the data layer on the real
//! servers: users (PostgreSQL), conversations, interaction logs and AI responses (MongoDB) and
//! the chat archive (ScyllaDB, in `chat_archive.rs`) round-trip with their PHI sealed at rest.

use chrono::{TimeZone, Utc};
use udl::mongo::models::*;
use udl::postgres::models::{User, UserStatus};
use udl::{field, Entity, ErrorKind, Json, Page, Role, StoreKind};
use uuid::Uuid;

mod common;
use common::*;

fn at(minute: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000 + minute * 60, 250_000_000)
        .unwrap()
}

fn user(email: String) -> User {
    User {
        id: Uuid::new_v4(),
        email,
        display_name: "Fake User".into(),
        role: Role::Patient,
        status: UserStatus::Active,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    }
}

#[tokio::test]
async fn users_are_found_by_email_and_unique_without_the_address_being_stored() {
    let w = world(true).await;
    let canary = canary();
    let users = w.data.repository::<User>(StoreKind::Postgres).unwrap();
    let a = user(format!("{canary}.Patient@Example.test"));
    users.create(&ctx(), a.clone()).await.unwrap();
    assert!(users.get(&ctx(), &a.id).await.unwrap() == Some(a.clone()));

    let differently_cased = field("email").eq(a.email.to_lowercase());
    let found = users
        .list(&ctx(), &differently_cased, &[], Page::first(5))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1, "found through the blind index");
    assert_eq!(found.items[0].id, a.id);

    let twin = user(a.email.to_uppercase());
    let err = users.create(&ctx(), twin).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(!err.to_string().contains(&canary), "{err}");

    let pg = w.data.postgres().unwrap();
    let row: String = sqlx::query_scalar("SELECT row_to_json(u)::text FROM users u WHERE id = $1")
        .bind(a.id)
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert!(!row.contains(&canary), "{row}");
    assert!(row.contains("\"email_plaintext\":null"), "{row}");
    w.finish().await;
}

#[tokio::test]
async fn conversations_interactions_and_responses_round_trip_sealed_in_mongodb() {
    let w = world(true).await;
    let canary = canary();
    let patient = Uuid::new_v4();
    let conversation = Conversation {
        id: Uuid::new_v4(),
        patient_id: patient,
        title: Some("fake title".into()),
        messages: Json(vec![
            Message {
                role: MessageRole::Patient,
                text: format!("{canary}: I feel anxious"),
                at: at(1),
            },
            Message {
                role: MessageRole::Assistant,
                text: "fake: let's breathe".into(),
                at: at(2),
            },
        ]),
        status: ConversationStatus::Active,
        started_at: at(1),
        updated_at: at(2),
        version: 1,
    };
    round_trip(&w, conversation.clone()).await;
    round_trip(
        &w,
        PatientInteractionLog {
            id: Uuid::new_v4(),
            patient_id: patient,
            conversation_id: Some(conversation.id),
            kind: "check_in".into(),
            detail: serde_json::json!({"mood": 3, "note": canary}),
            occurred_at: at(3),
        },
    )
    .await;
    round_trip(
        &w,
        AiResponse {
            id: Uuid::new_v4(),
            conversation_id: conversation.id,
            patient_id: patient,
            model: "fake-llm".into(),
            prompt_hash: "0f0f".into(),
            response_text: format!("{canary}: let's breathe"),
            retrieved_chunk_ids: Json(vec![Uuid::new_v4()]),
            tokens_in: 120,
            tokens_out: 40,
            latency_ms: 850,
            feedback: Some(Json(Feedback {
                rating: 5,
                comment: Some("fake: helped".into()),
                by: "patient".into(),
                at: at(4),
            })),
            created_at: at(2),
        },
    )
    .await;

    for collection in ["conversations", "patient_interaction_logs", "ai_responses"] {
        let docs = w.documents(collection).await;
        assert_eq!(docs.len(), 1, "{collection}");
        let mut raw = Vec::new();
        docs[0].to_writer(&mut raw).unwrap();
        assert!(
            !String::from_utf8_lossy(&raw).contains(&canary),
            "{collection} holds the canary in the clear"
        );
    }
    w.finish().await;
}

async fn round_trip<T: Entity + Clone + PartialEq + std::fmt::Debug>(w: &World, value: T) {
    let repo = w.data.repository::<T>(StoreKind::Mongo).unwrap();
    let id = repo.create(&ctx(), value.clone()).await.expect("create");
    let back = repo.get(&ctx(), &id).await.expect("get").expect("stored");
    assert!(back == value, "{} changed: {back:?}", T::meta().name);
}
