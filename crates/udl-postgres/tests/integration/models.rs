//! The platform's PostgreSQL models on the real server, through the platform migrations.

use crate::common;

use chrono::{Duration, TimeZone, Utc};
use udl_core::{AccessContext, Changes, Entity, ErrorKind, Purpose, Role, Sensitivity};
use udl_postgres::models::*;
use udl_postgres::PgStore;
use uuid::Uuid;

fn ctx() -> AccessContext {
    AccessContext::new("models-test", Role::Admin, Purpose::Operations).unwrap()
}

fn at(hour: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000 + hour * 3600, 0).unwrap()
}

async fn platform() -> PgStore {
    let store = common::fresh_store().await;
    migrator().up(&store).await.expect("platform migrations");
    access_log_partition(&store, at(0)).await;
    store
}

fn user(n: u32, role: Role) -> User {
    User {
        id: Uuid::new_v4(),
        email: format!("fake.user{n}@example.test"),
        display_name: format!("Fake User {n}"),
        role,
        status: UserStatus::Active,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    }
}

/// Stores `user` as rows other models refer to. Its e-mail and name are sealed by the privacy
/// layer, which this crate does not have (`udl/tests/integration/shipped_models.rs` covers it), so the
/// stored columns hold placeholders; the repository itself refuses to store them in the clear.
async fn insert_user(store: &PgStore, user: &User) {
    let err = store
        .repository::<User>()
        .err()
        .expect("users are refused below the privacy layer");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    sqlx::query(
        "INSERT INTO users (id, email, email_bidx, display_name, role, status, created_at, \
         updated_at, version) VALUES ($1, 'placeholder', $2, $3, $4, 'active', $5, $5, 1)",
    )
    .bind(user.id)
    .bind(user.id.as_bytes().as_slice())
    .bind(user.display_name.as_bytes())
    .bind(user.role.as_str())
    .bind(user.created_at)
    .execute(store.pool())
    .await
    .unwrap();
}

/// `value` stored and read back as stored, past the access policy and audit (which live in the
/// privacy layers, above this crate).
async fn round_trip<T: Entity + Clone + PartialEq + std::fmt::Debug>(store: &PgStore, value: T) {
    let repo = store.unaudited_repository::<T>().unwrap();
    let id = repo.create(&ctx(), value.clone()).await.expect("create");
    let back = repo.get(&ctx(), &id).await.expect("get").expect("stored");
    assert!(back == value, "{} changed: {back:?}", T::meta().name);
}

#[tokio::test]
async fn every_model_round_trips() {
    let store = platform().await;
    let patient = user(1, Role::Patient);
    let clinician = user(2, Role::Clinician);
    insert_user(&store, &patient).await;
    insert_user(&store, &clinician).await;
    round_trip(
        &store,
        UserCredential {
            user_id: patient.id,
            password_hash: "$argon2id$v=19$m=65536,t=3,p=4$ZmFrZXNhbHQ$ZmFrZWhhc2g".into(),
            algorithm: "argon2id".into(),
            updated_at: at(1),
            version: 1,
        },
    )
    .await;
    let sub = Subscription {
        id: Uuid::new_v4(),
        user_id: patient.id,
        plan: "therapy-monthly".into(),
        status: SubscriptionStatus::Active,
        current_period_start: at(0),
        current_period_end: at(24 * 30),
        cancel_at: None,
        external_ref: Some("fake_sub_0001".into()),
        created_at: at(0),
        version: 1,
    };
    round_trip(&store, sub.clone()).await;
    round_trip(
        &store,
        Invoice {
            id: Uuid::new_v4(),
            subscription_id: sub.id,
            user_id: patient.id,
            amount_cents: 4_999,
            currency: "USD".into(),
            status: InvoiceStatus::Paid,
            issued_at: at(1),
            paid_at: Some(at(2)),
            version: 1,
        },
    )
    .await;
    // A relationship's kind is sealed, so only the privacy layers store it.
    let err = store
        .unaudited_repository::<PatientRelationship>()
        .err()
        .expect("refused below the privacy layer");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    round_trip(
        &store,
        ConsentRecord {
            id: Uuid::new_v4(),
            patient_id: patient.id,
            grantee_id: Some(clinician.id),
            grantee_role: None,
            purpose: Purpose::Treatment,
            scope: "conversations".into(),
            granted_at: at(0),
            expires_at: Some(at(24 * 90)),
            revoked_at: None,
            version: 1,
        },
    )
    .await;
    round_trip(
        &store,
        AppConfigEntry {
            key: "rag.top_k".into(),
            value: serde_json::json!({"default": 8, "max": 32}),
            description: Some("chunks retrieved per question".into()),
            updated_at: at(0),
            version: 1,
        },
    )
    .await;
    round_trip(&store, access_entry(Some(patient.id.to_string()))).await;
    common::drop_schema(&store).await;
}

/// The access log's partition for the month of `at`, which its writer would make.
async fn access_log_partition(store: &PgStore, at: chrono::DateTime<Utc>) {
    sqlx::query("SELECT udl_access_log_partition($1::date)")
        .bind(at.date_naive())
        .execute(store.pool())
        .await
        .unwrap();
}

fn access_entry(patient: Option<String>) -> PhiAccessLogEntry {
    PhiAccessLogEntry {
        seq: 1,
        id: Uuid::new_v4(),
        occurred_at: at(3),
        actor_id: "clinician-fake-1".into(),
        actor_role: Role::Clinician,
        purpose: Purpose::Treatment,
        patient_id: patient,
        entity: "conversations".into(),
        record_ids: serde_json::json!(["c-1"]),
        fields: serde_json::json!(["messages"]),
        operation: "get".into(),
        outcome: AccessOutcome::Allowed,
        request_id: "req-fake-1".into(),
        prev_hash: None,
        hash: vec![1; 32],
    }
}

#[tokio::test]
async fn access_log_is_append_only() {
    let store = platform().await;
    let log = store.unaudited_repository::<PhiAccessLogEntry>().unwrap();
    let entry = access_entry(None);
    log.create(&ctx(), entry.clone()).await.unwrap();
    let err = log
        .update(
            &ctx(),
            &entry.id,
            Changes::new().set("outcome", AccessOutcome::Denied),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = log.delete(&ctx(), &entry.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(log.get(&ctx(), &entry.id).await.unwrap().unwrap() == entry);
    common::drop_schema(&store).await;
}

#[tokio::test]
async fn relational_rules_hold() {
    let store = platform().await;
    let a = user(1, Role::Patient);
    insert_user(&store, &a).await;

    let orphan = Subscription {
        id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        plan: "p".into(),
        status: SubscriptionStatus::Trialing,
        current_period_start: at(0),
        current_period_end: at(1),
        cancel_at: None,
        external_ref: None,
        created_at: at(0),
        version: 1,
    };
    let err = store
        .repository::<Subscription>()
        .unwrap()
        .create(&ctx(), orphan)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    let backwards = ConsentRecord {
        id: Uuid::new_v4(),
        patient_id: a.id,
        grantee_id: None,
        grantee_role: None,
        purpose: Purpose::Research,
        scope: "all".into(),
        granted_at: at(0),
        expires_at: Some(at(0) - Duration::hours(1)),
        revoked_at: None,
        version: 1,
    };
    let err = store
        .unaudited_repository::<ConsentRecord>()
        .unwrap()
        .create(&ctx(), backwards)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "a consent without grantee is refused: {err}"
    );
    common::drop_schema(&store).await;
}

#[test]
fn phi_fields_are_classified_and_hidden_from_debug() {
    for meta in [
        PatientRelationship::meta(),
        ConsentRecord::meta(),
        PhiAccessLogEntry::meta(),
    ] {
        assert!(meta.has_phi(), "{} must declare PHI", meta.name);
        assert!(meta.fields.iter().all(|f| f.classified), "{}", meta.name);
        meta.validate().unwrap();
    }
    let patient_field = PatientRelationship::meta().field("patient_id").unwrap();
    assert_eq!(patient_field.sensitivity, Sensitivity::Phi);
    assert!(
        patient_field.handling.plaintext.is_some(),
        "the patient id says why it is kept in the clear"
    );
    assert!(
        PatientRelationship::meta()
            .field("kind")
            .unwrap()
            .handling
            .encrypt
    );
    let u = user(7, Role::Patient);
    let shown = format!("{u:?}");
    assert!(
        !shown.contains("fake.user7") && !shown.contains("Fake User 7"),
        "{shown}"
    );
}

/// A chain written to the real table verifies when read back; an entry edited or deleted
/// behind the append-only triggers' back (a superuser disabling them) is found.
#[tokio::test]
async fn the_access_log_chain_survives_the_table_and_catches_tampering() {
    let store = platform().await;
    let log = store.unaudited_repository::<PhiAccessLogEntry>().unwrap();
    let mut prev = None;
    for hour in 0..6 {
        let entry = PhiAccessLogEntry {
            seq: hour + 1,
            id: Uuid::new_v4(),
            occurred_at: at(hour) + Duration::nanoseconds(123_456_789),
            ..access_entry(None)
        }
        .sealed_after(prev.take());
        prev = Some(entry.hash.clone());
        log.create(&ctx(), entry).await.unwrap();
    }
    let read = || async {
        let rows: Vec<PhiAccessLogEntry> = log
            .list(
                &ctx(),
                &udl_core::Filter::All,
                &[udl_core::SortKey::asc("occurred_at")],
                udl_core::Page::first(100),
            )
            .await
            .unwrap()
            .items;
        rows
    };
    assert_eq!(verify_chain(&read().await, None), Ok(()));

    let tamper = |sql: &'static str| {
        let pool = store.pool().clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::raw_sql("SET session_replication_role = replica")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
            sqlx::raw_sql("SET session_replication_role = origin")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    };
    tamper(
        "UPDATE phi_access_log SET outcome = 'denied'
         WHERE occurred_at = (SELECT occurred_at FROM phi_access_log ORDER BY occurred_at OFFSET 2 LIMIT 1)",
    )
    .await;
    assert_eq!(
        verify_chain(&read().await, None),
        Err(BrokenLink::Altered { index: 2 })
    );
    tamper(
        "DELETE FROM phi_access_log
         WHERE occurred_at = (SELECT occurred_at FROM phi_access_log ORDER BY occurred_at OFFSET 4 LIMIT 1)",
    )
    .await;
    let after_delete = read().await;
    assert_eq!(after_delete.len(), 5);
    assert_eq!(
        verify_chain(&after_delete[3..], Some(&after_delete[2].hash)),
        Err(BrokenLink::Unlinked { index: 1 }),
        "the entry after the deleted one no longer links"
    );
    common::drop_schema(&store).await;
}

/// Entries logged before the access log was partitioned move into it in chain order.
#[tokio::test]
async fn partitioning_the_access_log_keeps_its_entries_in_order() {
    let store = common::fresh_store().await;
    let before: Vec<_> = migrations().into_iter().take(6).collect();
    udl_postgres::Migrator::new(before)
        .unwrap()
        .up(&store)
        .await
        .unwrap();
    let log = store.unaudited_repository::<PhiAccessLogEntry>().unwrap();
    let ids = [Uuid::new_v4(), Uuid::new_v4()];
    for (hour, id) in ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO phi_access_log (id, occurred_at, actor_id, actor_role, purpose, entity,
             record_ids, fields, operation, outcome, request_id, hash)
             VALUES ($1, $2, 'clinician-fake-1', 'clinician', 'treatment', 'notes', '[]', '[]',
             'get', 'allowed', 'req-fake', '\\x01')",
        )
        .bind(id)
        .bind(at(5 - hour as i64))
        .execute(store.pool())
        .await
        .unwrap();
    }
    migrator().up(&store).await.unwrap();
    let moved: Vec<(i64, Uuid)> = sqlx::query_as("SELECT seq, id FROM phi_access_log ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(moved, vec![(1, ids[1]), (2, ids[0])], "ordered by time");
    let partitioned: bool = sqlx::query_scalar(
        "SELECT relkind = 'p' FROM pg_class WHERE relname = 'phi_access_log'
         AND relnamespace = current_schema()::regnamespace",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(partitioned);
    assert!(log.get(&ctx(), &ids[0]).await.unwrap().is_some());
    let err = sqlx::raw_sql("TRUNCATE phi_access_log_y2025m10")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    common::drop_schema(&store).await;
}
