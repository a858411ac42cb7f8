//! Retention of patients' interaction logs in MongoDB: each document expires
//! `retention.interaction_logs` after it happened (a TTL index), reads leave it out from that
//! second, and `retention_purge` deletes it unless a legal hold on its patient keeps it (the
//! receipt says so), deleting it once the hold is released.

use std::sync::Arc;

use chrono::Utc;
use mongodb::bson::{Bson, Document};
use udl::jobs::retention::{DataClass, HoldScope, LegalHolds, Receipts, RetentionPurge};
use udl::jobs::{Counts, JobRunner, ManualClock, NoProgress};
use udl::mongo::models::PatientInteractionLog;
use udl::{DataLayer, Entity as _};
use uuid::Uuid;

use crate::common::{ctx, world_with, World};

fn log(patient: Uuid, occurred_at: chrono::DateTime<Utc>) -> PatientInteractionLog {
    PatientInteractionLog {
        id: Uuid::new_v4(),
        patient_id: patient,
        conversation_id: None,
        kind: "check_in".into(),
        detail: serde_json::json!({"mood": 3}),
        occurred_at,
    }
}

async fn purge(data: &DataLayer, now: chrono::DateTime<Utc>) -> Counts {
    let pg = data.postgres().unwrap().clone();
    let config = udl::config::from_sources(
        None,
        [(
            "UDL__RETENTION__INTERACTION_LOGS".to_owned(),
            "1d".to_owned(),
        )],
    )
    .unwrap();
    let job =
        RetentionPurge::new(pg.clone(), config.retention).with_mongo(data.mongo().unwrap().clone());
    JobRunner::new(pg, Arc::new(ManualClock::at(now)))
        .run(&job, false, Arc::new(NoProgress))
        .await
        .expect("the purge runs")
        .counts
}

async fn stored(w: &World, id: Uuid) -> Option<Document> {
    w.documents(PatientInteractionLog::meta().name)
        .await
        .into_iter()
        .find(|d| matches!(d.get("_id"), Some(Bson::Binary(b)) if b.bytes == id.as_bytes()))
}

#[tokio::test]
async fn interaction_logs_expire_from_when_they_happened_and_a_hold_keeps_them() {
    let w = world_with(
        true,
        udl_testkit::servers::postgres_url(),
        vec![("UDL__RETENTION__INTERACTION_LOGS", "1d".to_owned())],
    )
    .await;
    let logs = w.data.repository::<PatientInteractionLog>().unwrap();
    let day = chrono::Duration::days(1);
    let second = chrono::Duration::seconds(1);

    // Reads: a log whose day ended a second ago is gone; one with half a minute left is there.
    let now = Utc::now();
    let expired = log(Uuid::new_v4(), now - day - second);
    let current = log(Uuid::new_v4(), now - day + chrono::Duration::seconds(30));
    for l in [&expired, &current] {
        logs.create(&ctx(), l.clone()).await.unwrap();
    }
    assert!(logs.get(&ctx(), &expired.id).await.unwrap().is_none());
    assert!(logs.get(&ctx(), &current.id).await.unwrap().is_some());
    let expiry = stored(&w, current.id)
        .await
        .expect("stored")
        .get_datetime("_udl_expires_at")
        .expect("an expiry")
        .timestamp_millis();
    assert_eq!(
        expiry,
        (current.occurred_at + day).timestamp_millis(),
        "a day from when it happened"
    );

    // The purge, with a hold on one patient: their log stays past its retention.
    let held_patient = Uuid::new_v4();
    let kept = log(held_patient, Utc::now() - chrono::Duration::minutes(10));
    logs.create(&ctx(), kept.clone()).await.unwrap();
    let kept_until = kept.occurred_at + day;
    let holds = LegalHolds::new(w.data.postgres().unwrap().clone());
    let hold = holds
        .place(
            HoldScope::SubjectInClass(held_patient.to_string(), DataClass::InteractionLogs),
            "matter 2026-FAKE-5",
            "counsel-fake-2",
        )
        .await
        .unwrap();
    let counts = purge(&w.data, kept_until - second).await;
    assert_eq!(counts["interaction_logs.holds_applied"], 1);
    assert_eq!(counts["interaction_logs.records_held_back"], 0);
    let counts = purge(&w.data, kept_until + second).await;
    assert_eq!(counts["interaction_logs.records_held_back"], 1);
    let doc = stored(&w, kept.id).await.expect("held, so kept");
    assert!(doc.get("_udl_expires_at").is_none() && doc.get("_udl_held_expires_at").is_some());
    let receipts = Receipts::new(w.data.postgres().unwrap().clone())
        .since(None)
        .await
        .unwrap();
    let held = receipts.last().expect("a receipt for what was held");
    assert_eq!(
        (
            held.data_class.as_str(),
            held.store.as_str(),
            held.held_back
        ),
        ("interaction_logs", "mongo", 1)
    );
    assert_eq!(held.holds, vec![hold]);

    // Released: the next purge deletes it.
    holds.release(hold, "counsel-fake-2").await.unwrap();
    let counts = purge(&w.data, kept_until + second).await;
    assert_eq!(counts["interaction_logs.holds_released"], 1);
    assert!(counts["interaction_logs.records_deleted"] >= 1);
    assert!(stored(&w, kept.id).await.is_none());
    assert!(
        stored(&w, current.id).await.is_none(),
        "also past its day at that instant"
    );
    w.finish().await;
}
