//! The platform's own models through the data layer on the real servers: users and care
//! relationships (PostgreSQL), document chunks, conversations, interaction logs and AI
//! responses (MongoDB) and the chat archive (ScyllaDB) round-trip with their PII and PHI sealed
//! at rest.

use chrono::{TimeZone, Utc};
use udl::mongo::models::*;
use udl::postgres::models::{PatientRelationship, RelationshipKind, User, UserStatus};
use udl::scylla::models::{ArchiveRole, ArchivedMessage};
use udl::{field, Entity, ErrorKind, Json, Page, Role, SortKey};
use uuid::Uuid;

use crate::common;
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
    let users = w.data.repository::<User>().unwrap();
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

/// Canaries in every sealed field of every model the platform ships, written through the data
/// layer on all three stores, are in no table, collection, CQL row, Redis key or value, log
/// line or metric; and no registered model with a sealed field is left out of the test.
#[tokio::test]
async fn every_shipped_model_keeps_its_canaries_sealed_on_every_store() {
    udl_testkit::logs::capture();
    let w = world(true).await;
    let canary = canary();
    let patient = Uuid::new_v4();
    let mut written = Vec::new();
    let account = User {
        id: patient,
        display_name: format!("{canary} Fake Name"),
        ..user(format!("{canary}@example.test"))
    };
    written.push(round_trip(&w, account).await);
    let clinician = User {
        role: Role::Clinician,
        ..user(format!("{canary}.clinician@example.test"))
    };
    let clinician_id = clinician.id;
    round_trip(&w, clinician).await;
    written.push(
        round_trip(
            &w,
            PatientRelationship {
                id: Uuid::new_v4(),
                patient_id: patient,
                actor_id: clinician_id,
                kind: RelationshipKind::Therapist,
                valid_from: at(0),
                valid_until: None,
                created_at: at(0),
                version: 1,
            },
        )
        .await,
    );
    let conversation = Conversation {
        id: Uuid::new_v4(),
        patient_id: patient,
        title: Some(format!("{canary} fake title")),
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
    written.push(round_trip(&w, conversation.clone()).await);
    written.push(
        round_trip(
            &w,
            PatientInteractionLog {
                id: Uuid::new_v4(),
                patient_id: patient,
                conversation_id: Some(conversation.id),
                kind: format!("{canary} check_in"),
                detail: serde_json::json!({"mood": 3, "note": canary}),
                occurred_at: at(3),
            },
        )
        .await,
    );
    written.push(
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
                    comment: Some(format!("{canary} fake: helped")),
                    by: "patient".into(),
                    at: at(4),
                })),
                created_at: at(2),
            },
        )
        .await,
    );
    let text = format!("{canary} fake chunk");
    written.push(round_trip(&w, chunk(Uuid::new_v4(), 0, text, vec![1.0, 0.0])).await);
    let archive = w.data.chat_archive().unwrap();
    let message = ArchivedMessage::new(
        conversation.id,
        at(5),
        ArchiveRole::Patient,
        format!("{canary} fake archived"),
    );
    archive.append(&ctx(), message).await.unwrap();
    written.push(ArchivedMessage::meta().name);
    // Content is cached in Redis: read twice, the second time from the cache.
    let content = TherapeuticContent {
        id: Uuid::new_v4(),
        slug: "fake-box-breathing".into(),
        title: "Box breathing".into(),
        kind: ContentKind::Playbook,
        body: "Breathe in for four counts.".into(),
        steps: Json(vec![]),
        tags: Json(vec!["breathing".into()]),
        media_asset_id: None,
        content_version: 1,
        published: true,
        updated_at: at(0),
        version: 1,
    };
    round_trip(&w, content.clone()).await;
    round_trip_read(&w, &content).await;

    for sealed in w
        .data
        .registry()
        .entities()
        .iter()
        .filter(|e| e.has_encrypted_fields())
    {
        assert!(
            written.contains(&sealed.name),
            "{} has sealed fields but no canary here",
            sealed.name
        );
    }
    assert_absent(
        &canary,
        w.postgres_contents().await.as_bytes(),
        "PostgreSQL",
    );
    assert_absent(&canary, &w.mongo_contents().await, "MongoDB");
    assert_absent(&canary, w.scylla_contents().await.as_bytes(), "ScyllaDB");
    assert_absent(&canary, &w.redis_contents().await, "Redis");
    assert_absent(
        &canary,
        udl_testkit::logs::captured().as_bytes(),
        "the logs",
    );
    assert_absent(&canary, w.data.metrics().render().as_bytes(), "the metrics");
    w.finish().await;
}

/// `value` written through the data layer and read back unchanged; the entity's name.
async fn round_trip<T: Entity + Clone + PartialEq + std::fmt::Debug>(
    w: &World,
    value: T,
) -> &'static str {
    let repo = w.data.repository::<T>().unwrap();
    repo.create(&ctx(), value.clone()).await.expect("create");
    round_trip_read(w, &value).await;
    T::meta().name
}

async fn round_trip_read<T: Entity + PartialEq + std::fmt::Debug>(w: &World, value: &T) {
    let repo = w.data.repository::<T>().unwrap();
    let back = repo
        .get(&ctx(), &value.id())
        .await
        .expect("get")
        .expect("stored");
    assert!(back == *value, "{} changed: {back:?}", T::meta().name);
}

fn chunk(document_id: Uuid, index: i64, text: String, embedding: Vec<f32>) -> DocumentChunk {
    DocumentChunk {
        id: Uuid::new_v4(),
        document_id,
        chunk_index: index,
        text,
        dimension: embedding.len() as i64,
        embedding,
        embedding_model: "fake-embed-4".into(),
        content_type: if index % 2 == 0 {
            "playbook"
        } else {
            "patient_upload"
        }
        .into(),
        metadata: serde_json::json!({"page": index + 1, "lang": "en"}),
        source_media_asset_id: Some(Uuid::new_v4()),
        created_at: at(index),
    }
}

/// The retrieval pipeline's path: a document's chunks written in one batch, listed back in
/// order, and found by similarity with a prefilter, through the access policy, audit and
/// encryption; the text is sealed in MongoDB, the embedding kept searchable.
#[tokio::test]
async fn document_chunks_are_written_listed_and_searched_through_every_layer() {
    let w = world(true).await;
    let canary = canary();
    let chunks = w.data.repository::<DocumentChunk>().unwrap();
    let document = Uuid::new_v4();
    let batch: Vec<DocumentChunk> = (0..7)
        .rev()
        .map(|i| {
            let angle = i as f32 * 0.2;
            chunk(
                document,
                i,
                format!("{canary} fake chunk {i}"),
                vec![angle.cos(), angle.sin(), 0.0, 0.5],
            )
        })
        .collect();
    chunks.create_many(&ctx(), batch.clone()).await.unwrap();
    let other = chunk(
        Uuid::new_v4(),
        0,
        "fake other document".into(),
        vec![1.0, 0.0, 0.0, 0.5],
    );
    chunks.create(&ctx(), other).await.unwrap();

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
    let third = batch.iter().find(|c| c.chunk_index == 2).unwrap();
    assert!(chunks.get(&ctx(), &third.id).await.unwrap().as_ref() == Some(third));

    let query = [0.35_f32.cos(), 0.35_f32.sin(), 0.0, 0.5];
    let hits = chunks
        .nearest(
            &ctx(),
            "embedding",
            &query,
            3,
            &field("document_id")
                .eq(document)
                .and(field("content_type").eq("playbook")),
        )
        .await
        .unwrap();
    let found: Vec<i64> = hits.iter().map(|(c, _)| c.chunk_index).collect();
    assert_eq!(found, vec![2, 0, 4], "most similar playbook chunks first");
    assert!(hits[0].0.text.ends_with("fake chunk 2"));

    let mut raw = Vec::new();
    for doc in w.documents("document_chunks").await {
        assert!(
            doc.get_binary_generic("text").is_ok(),
            "the text is stored sealed"
        );
        doc.to_writer(&mut raw).unwrap();
    }
    assert!(!raw
        .windows(canary.len())
        .any(|part| part == canary.as_bytes()));
    w.finish().await;
}
