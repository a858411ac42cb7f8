//! Safe by construction: every raw path to a PII- or PHI-bearing entity is refused, naming the
//! entity and the safe call; the one open path, `DataLayer::repository` (and transactions of
//! the data layer), puts each access to the policy, audits it, and stores and caches only
//! sealed values.

use std::sync::Arc;

use udl::cache::{CacheConfig, CachedStore};
use udl::postgres::models::{User, UserStatus};
use udl::{Entity, Error, ErrorKind, RecordStore, Repository, Role, StoreKind};
use uuid::Uuid;

use crate::common;
use common::*;

#[track_caller]
fn assert_refused<T>(path: &str, outcome: udl::Result<T>, entity: &str) {
    let err: Error = outcome
        .err()
        .unwrap_or_else(|| panic!("{path} was not refused"));
    assert_eq!(err.kind(), ErrorKind::Config, "{path}: {err}");
    let message = err.to_string();
    assert!(
        message.contains(entity),
        "{path} names the entity: {message}"
    );
    assert!(
        message.contains("DataLayer::repository") || message.contains("[privacy]"),
        "{path} names the safe call: {message}"
    );
}

#[tokio::test]
async fn every_raw_path_to_a_sensitive_entity_is_refused() {
    let w = world(true).await;
    let entity = PatientProfile::meta().name;
    assert_refused(
        "the PostgreSQL store's repository",
        w.data.postgres().unwrap().repository::<PatientProfile>(),
        entity,
    );
    assert_refused(
        "the MongoDB store's repository",
        w.data.mongo().unwrap().repository::<PatientProfile>(),
        entity,
    );
    for store in [StoreKind::POSTGRES, StoreKind::MONGO, StoreKind::SCYLLA] {
        assert_refused(
            "Repository::new over a layered record store",
            Repository::<PatientProfile>::new(w.data.unaudited_records(store).unwrap()),
            entity,
        );
    }
    assert_refused(
        "Repository::new over ScyllaDB's records",
        Repository::<PatientProfile>::new(w.data.scylla().unwrap().records()),
        entity,
    );
    // The data layer hands out its caches' figures only; a cache built over raw records is
    // refused like the records themselves.
    for backend in w.data.backends() {
        if let Some(records) = backend.unaudited_records() {
            assert_refused(
                "Repository::new over a backend's own records",
                Repository::<PatientProfile>::new(records),
                entity,
            );
        }
    }
    let own_cache = CachedStore::new(
        w.data.unaudited_records(StoreKind::POSTGRES).unwrap(),
        w.data.redis().unwrap().clone(),
        CacheConfig::default(),
    )
    .await
    .unwrap();
    assert_refused(
        "Repository::new over a cache built by hand",
        Repository::<PatientProfile>::new(own_cache as Arc<dyn RecordStore>),
        entity,
    );
    let in_raw_transaction = w
        .data
        .postgres()
        .unwrap()
        .transaction(|tx| async move { tx.repository::<User>().map(|_| ()) })
        .await;
    assert_refused(
        "a PostgreSQL store's transaction",
        in_raw_transaction,
        User::meta().name,
    );
    // Shipped models too, on each store they live in.
    assert_refused(
        "the MongoDB store's repository of a shipped model",
        w.data
            .mongo()
            .unwrap()
            .repository::<udl::mongo::models::DocumentChunk>(),
        "document_chunks",
    );
    assert_refused(
        "the PostgreSQL store's repository of a shipped model",
        w.data
            .postgres()
            .unwrap()
            .repository::<udl::postgres::models::ConsentRecord>(),
        "consent_records",
    );
    w.finish().await;
}

#[tokio::test]
async fn without_privacy_sensitive_entities_cannot_be_reached_at_all() {
    let w = world(false).await;
    assert_refused(
        "DataLayer::repository without [privacy]",
        w.data.repository::<User>(),
        User::meta().name,
    );
    assert_refused(
        "DataLayer::repository_in without [privacy]",
        w.data.repository_in::<PatientProfile>(StoreKind::MONGO),
        PatientProfile::meta().name,
    );
    let in_transaction = w
        .data
        .transaction(|tx| async move { tx.repository::<User>().map(|_| ()) })
        .await;
    assert_refused(
        "DataLayer::transaction without [privacy]",
        in_transaction,
        User::meta().name,
    );
    w.finish().await;
}

fn user(canary: &str, n: u32) -> User {
    let now = chrono::Utc::now();
    User {
        id: Uuid::new_v4(),
        email: format!("{canary}.{n}@example.test"),
        display_name: format!("{canary} Fake Name"),
        role: Role::Patient,
        status: UserStatus::Active,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

#[tokio::test]
async fn transactions_of_the_data_layer_audit_and_seal() {
    let w = world(true).await;
    let canary = canary();
    let (kept, rolled_back) = (user(&canary, 1), user(&canary, 2));
    let write = ctx();
    let (id, rolled_back_id) = (kept.id, rolled_back.id);
    w.data
        .transaction(|tx| async move {
            tx.repository::<User>()?.create(&ctx(), kept).await?;
            Ok(())
        })
        .await
        .unwrap();
    let failed = w
        .data
        .transaction(|tx| async move {
            tx.repository::<User>()?.create(&ctx(), rolled_back).await?;
            Err::<(), _>(Error::new(ErrorKind::Conflict, "fake business rule"))
        })
        .await;
    assert!(failed
        .unwrap_err()
        .to_string()
        .contains("fake business rule"));

    let users = w.data.repository::<User>().unwrap();
    assert!(users.get(&write, &id).await.unwrap().is_some(), "committed");
    assert!(
        users.get(&write, &rolled_back_id).await.unwrap().is_none(),
        "rolled back"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM phi_access_log \
         WHERE entity = 'users' AND operation = 'create' AND outcome = 'allowed'",
    )
    .fetch_one(w.data.postgres().unwrap().pool())
    .await
    .unwrap();
    assert_eq!(
        audited, 2,
        "both writes were audited before they were sent, the rolled-back one included"
    );
    assert_absent(
        &canary,
        w.postgres_contents().await.as_bytes(),
        "PostgreSQL",
    );

    let cached = w
        .data
        .transaction(|tx| async move { tx.repository::<PatientProfile>().map(|_| ()) })
        .await
        .unwrap_err();
    assert_eq!(cached.kind(), ErrorKind::Config, "{cached}");
    assert!(cached.to_string().contains("cache"), "{cached}");
    w.finish().await;
}

/// A fake patient's conversation whose title and message carry `canary`.
fn conversation(canary: &str) -> udl::mongo::models::Conversation {
    use udl::mongo::models::{Conversation, ConversationStatus, Message, MessageRole};
    let now = chrono::Utc::now();
    Conversation {
        id: Uuid::new_v4(),
        patient_id: Uuid::new_v4(),
        title: Some(format!("{canary} fake title")),
        messages: udl::Json(vec![Message {
            role: MessageRole::Patient,
            text: format!("{canary}: fake worry"),
            at: now,
        }]),
        status: ConversationStatus::Active,
        started_at: now,
        updated_at: now,
        version: 1,
    }
}

#[tokio::test]
async fn mongodb_transactions_of_the_data_layer_audit_and_seal() {
    use udl::mongo::models::Conversation;
    let w = world(true).await;
    let canary = canary();
    let (kept, aborted) = (conversation(&canary), conversation(&canary));
    let (id, aborted_id) = (kept.id, aborted.id);
    w.data
        .mongo_transaction(|tx| {
            let kept = kept.clone();
            async move {
                tx.repository::<Conversation>()?
                    .create(&ctx(), kept)
                    .await?;
                Ok(())
            }
        })
        .await
        .unwrap();
    let failed = w
        .data
        .mongo_transaction(|tx| {
            let aborted = aborted.clone();
            async move {
                tx.repository::<Conversation>()?
                    .create(&ctx(), aborted)
                    .await?;
                Err::<(), _>(Error::new(ErrorKind::Conflict, "fake business rule"))
            }
        })
        .await;
    assert!(failed
        .unwrap_err()
        .to_string()
        .contains("fake business rule"));
    let conversations = w.data.repository::<Conversation>().unwrap();
    assert!(
        conversations.get(&ctx(), &id).await.unwrap().is_some(),
        "committed"
    );
    assert!(
        conversations
            .get(&ctx(), &aborted_id)
            .await
            .unwrap()
            .is_none(),
        "aborted"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM phi_access_log \
         WHERE entity = 'conversations' AND operation = 'create' AND outcome = 'allowed'",
    )
    .fetch_one(w.data.postgres().unwrap().pool())
    .await
    .unwrap();
    assert_eq!(audited, 2, "both writes were audited before they were sent");
    assert_absent(&canary, &w.mongo_contents().await, "MongoDB");

    let cached = w
        .data
        .mongo_transaction(|tx| async move { tx.repository::<PatientProfile>().map(|_| ()) })
        .await
        .unwrap_err();
    assert_eq!(cached.kind(), ErrorKind::Config, "{cached}");
    w.finish().await;
}
