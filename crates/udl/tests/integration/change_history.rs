//! PHI change history through `DataLayer` on the real servers: every change to a PHI field, on
//! any store, leaves who, when, why, before and after — encrypted in the history table.

use udl::{Changes, Entity, StoreKind, Value};

use crate::common;
use common::*;

#[tokio::test]
async fn every_change_to_a_phi_field_keeps_who_when_before_and_after() {
    let w = world(true).await;
    let canary = canary();
    let care = w.care().await;
    let history = w.data.change_history().unwrap();
    for store in [StoreKind::MONGO, StoreKind::SCYLLA, StoreKind::POSTGRES] {
        let repo = w.repo(store);
        let p = PatientProfile {
            patient_id: care.patient,
            ..profile(&canary, 1)
        };
        let clinician = care.treating();
        repo.create(&clinician, p.clone()).await.unwrap();
        let revised = format!("{canary} revised diagnosis");
        let changes = Changes::new()
            .set("diagnosis", revised.clone())
            .set("clinic", "clinic-9");
        assert!(repo.update(&clinician, &p.id, changes).await.unwrap());
        // A change to fields without PHI alone leaves no history.
        let changes = Changes::new().set("clinic", "clinic-10");
        assert!(repo.update(&clinician, &p.id, changes).await.unwrap());
        assert!(repo.delete(&ctx(), &p.id).await.unwrap());

        let reader = care.treating();
        let changes = history
            .of(&reader, PatientProfile::meta(), &Value::Uuid(p.id))
            .await
            .unwrap();
        let read = w.entries_of(&reader).await;
        assert_eq!(read.len(), 1, "reading the history is audited");
        assert_eq!(read[0].operation, "history");
        let mut recorded: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.operation.as_str(), c.field.as_str()))
            .collect();
        recorded.sort();
        let expected = [
            ("delete", "born_on"),
            ("delete", "diagnosis"),
            ("insert", "born_on"),
            ("insert", "diagnosis"),
            ("update", "diagnosis"),
        ];
        assert_eq!(recorded, expected, "{store}");
        let update = changes.iter().find(|c| c.operation == "update").unwrap();
        assert_eq!(update.before, Value::Text(p.diagnosis.clone()), "{store}");
        assert_eq!(update.after, Value::Text(revised.clone()));
        assert_eq!(update.actor_id, care.clinician.to_string());
        assert_eq!(update.purpose, "treatment");
        let deleted = changes
            .iter()
            .find(|c| c.operation == "delete" && c.field == "diagnosis")
            .unwrap();
        assert_eq!(
            (deleted.before.clone(), deleted.after.clone()),
            (Value::Text(revised), Value::Null)
        );
        assert_eq!(deleted.actor_id, "system:privacy-test");
    }
    // Without a relationship or consent, the history is not read.
    let stranger = udl::AccessContext::new(
        uuid::Uuid::new_v4().to_string(),
        udl::Role::Clinician,
        udl::Purpose::Treatment,
    )
    .unwrap()
    .for_patient(care.patient.to_string())
    .unwrap();
    let err = history
        .of(
            &stranger,
            PatientProfile::meta(),
            &Value::Uuid(uuid::Uuid::new_v4()),
        )
        .await
        .err()
        .expect("denied");
    assert_eq!(err.kind(), udl::ErrorKind::PermissionDenied, "{err}");
    let pg = w.data.postgres().unwrap();
    let rows: String =
        sqlx::query_scalar("SELECT string_agg(row_to_json(h)::text, '') FROM phi_change_history h")
            .fetch_one(pg.pool())
            .await
            .unwrap();
    // The profiles' 15 changes, and the care relationship's patient and kind (PHI, set when the
    // relationship was created).
    assert_eq!(rows.matches("\"field\":").count(), 17);
    assert!(!rows.contains(&canary), "the history holds ciphertext only");
    let err = sqlx::query("DELETE FROM phi_change_history")
        .execute(pg.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    w.finish().await;
}

/// Changes older than `retention.phi_change_history` are left out of the history's reads, to the
/// second, before their month is dropped.
#[tokio::test]
async fn changes_past_their_retention_are_left_out_of_the_history() {
    let w = world_with(
        true,
        udl_testkit::servers::postgres_url(),
        vec![("UDL__RETENTION__PHI_CHANGE_HISTORY", "1d".to_owned())],
    )
    .await;
    let canary = canary();
    let care = w.care().await;
    let p = PatientProfile {
        patient_id: care.patient,
        ..profile(&canary, 1)
    };
    w.repo(StoreKind::POSTGRES)
        .create(&care.treating(), p.clone())
        .await
        .unwrap();
    // Two changes written around the boundary: a day and a second ago, a day less 30 s ago.
    let pg = w.data.postgres().unwrap();
    for (age, request) in [
        ("1 day 1 second", "req-old"),
        ("1 day -30 seconds", "req-kept"),
    ] {
        sqlx::query("SELECT udl_change_history_partition((now() - $1::interval)::date)")
            .bind(age)
            .execute(pg.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO phi_change_history (id, occurred_at, actor_id, actor_role, purpose,
                 request_id, store, entity, record_id, field, operation, before, after)
             VALUES (gen_random_uuid(), now() - $1::interval, 'clinician-fake-9', 'clinician',
                     'treatment', $2, 'postgres', $3, $4, 'diagnosis', 'update', NULL, NULL)",
        )
        .bind(age)
        .bind(request)
        .bind(PatientProfile::meta().name)
        .bind(p.id.to_string())
        .execute(pg.pool())
        .await
        .unwrap();
    }
    let changes = w
        .data
        .change_history()
        .unwrap()
        .of(&care.treating(), PatientProfile::meta(), &Value::Uuid(p.id))
        .await
        .unwrap();
    let requests: Vec<&str> = changes
        .iter()
        .filter(|c| c.operation == "update")
        .map(|c| c.request_id.as_str())
        .collect();
    assert_eq!(requests, ["req-kept"]);
    assert_eq!(
        changes.iter().filter(|c| c.operation == "insert").count(),
        2
    );
    w.finish().await;
}
