//! The access policy through `DataLayer` on the real servers: care relationships and consents
//! in PostgreSQL decide who may read a patient's PHI for which purpose; denials are audited and
//! returned as `PermissionDenied`; break-glass access goes through, flagged.

use udl::postgres::models::{AccessOutcome, ConsentRecord, PhiAccessLogEntry};
use udl::{
    field, AccessContext, Changes, ErrorKind, Page, Purpose, Repository, Role, SortKey, StoreKind,
};
use uuid::Uuid;

use crate::common;
use common::*;

/// The newest access-log entry.
async fn last_entry(w: &World) -> PhiAccessLogEntry {
    let log = w
        .data
        .postgres()
        .unwrap()
        .unaudited_repository::<PhiAccessLogEntry>()
        .unwrap();
    let newest = log
        .list(
            &AccessContext::system("policy-test"),
            &udl::Filter::All,
            &[SortKey::desc("seq")],
            Page::first(1),
        )
        .await
        .unwrap();
    newest.items.into_iter().next().expect("an entry")
}

fn acting(actor: Uuid, role: Role, purpose: Purpose, patient: Uuid) -> AccessContext {
    AccessContext::new(actor.to_string(), role, purpose)
        .unwrap()
        .for_patient(patient.to_string())
        .unwrap()
}

async fn consent(
    w: &World,
    patient: Uuid,
    grantee: Result<Uuid, Role>,
    purpose: Purpose,
    scope: &str,
) -> Uuid {
    let (grantee_id, grantee_role) = match grantee {
        Ok(actor) => (Some(actor), None),
        Err(role) => (None, Some(role.as_str().to_owned())),
    };
    let record = ConsentRecord {
        id: Uuid::new_v4(),
        patient_id: patient,
        grantee_id,
        grantee_role,
        purpose,
        scope: scope.into(),
        granted_at: chrono::Utc::now() - chrono::Duration::minutes(1),
        expires_at: None,
        revoked_at: None,
        version: 1,
    };
    let consents = w.data.repository::<ConsentRecord>().unwrap();
    consents.create(&ctx(), record).await.unwrap()
}

async fn assert_denied(
    w: &World,
    repo: &Repository<PatientProfile>,
    ctx: &AccessContext,
    id: Uuid,
) {
    let err = repo.get(ctx, &id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let entry = last_entry(w).await;
    assert_eq!(entry.outcome, AccessOutcome::Denied);
    assert_eq!(entry.request_id, ctx.request_id());
}

#[tokio::test]
async fn relationships_and_consents_decide_and_break_glass_is_flagged() {
    let w = world(true).await;
    let care = w.care().await;
    let repo = w.repo(StoreKind::POSTGRES);
    let p = PatientProfile {
        patient_id: care.patient,
        ..profile(&canary(), 1)
    };
    repo.create(&care.treating(), p.clone()).await.unwrap();

    // The treating clinician reads for treatment, but not for research.
    assert!(repo.get(&care.treating(), &p.id).await.unwrap().is_some());
    let research = acting(
        care.clinician,
        Role::Clinician,
        Purpose::Research,
        care.patient,
    );
    assert_denied(&w, &repo, &research, p.id).await;

    // Another clinician needs consent; it works once given, and stops once revoked.
    let other = w.user(Role::Clinician).await;
    let asks = || acting(other, Role::Clinician, Purpose::Treatment, care.patient);
    assert_denied(&w, &repo, &asks(), p.id).await;
    let given = consent(
        &w,
        care.patient,
        Ok(other),
        Purpose::Treatment,
        "patient_profiles",
    )
    .await;
    assert!(repo.get(&asks(), &p.id).await.unwrap().is_some());
    let consents = w.data.repository::<ConsentRecord>().unwrap();
    let revoke = Changes::new().set("revoked_at", chrono::Utc::now());
    consents.update(&ctx(), &given, revoke).await.unwrap();
    assert_denied(&w, &repo, &asks(), p.id).await;

    // A consent may name a role and cover every entity; its scope must match otherwise.
    let support = w.user(Role::Support).await;
    let helps = acting(support, Role::Support, Purpose::Operations, care.patient);
    consent(
        &w,
        care.patient,
        Err(Role::Support),
        Purpose::Operations,
        "billing",
    )
    .await;
    assert_denied(&w, &repo, &helps, p.id).await;
    consent(
        &w,
        care.patient,
        Err(Role::Support),
        Purpose::Operations,
        "all",
    )
    .await;
    assert!(repo.get(&helps, &p.id).await.unwrap().is_some());

    // Patients reach their own data only.
    let own = acting(
        care.patient,
        Role::Patient,
        Purpose::PatientRequest,
        care.patient,
    );
    assert!(repo.get(&own, &p.id).await.unwrap().is_some());
    let stranger = w.user(Role::Patient).await;
    let nosy = acting(
        stranger,
        Role::Patient,
        Purpose::PatientRequest,
        care.patient,
    );
    assert_denied(&w, &repo, &nosy, p.id).await;

    // Without the patient named, PHI is not reached; nor through another patient's consent.
    let anonymous = AccessContext::new(
        care.clinician.to_string(),
        Role::Clinician,
        Purpose::Treatment,
    )
    .unwrap();
    assert_denied(&w, &repo, &anonymous, p.id).await;
    let elsewhere = w.care().await;
    let wrong_patient = acting(
        elsewhere.clinician,
        Role::Clinician,
        Purpose::Treatment,
        elsewhere.patient,
    );
    let err = repo.get(&wrong_patient, &p.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("another patient"), "{err}");
    let logged = w.entries_of(&wrong_patient).await;
    assert_eq!(
        logged.iter().map(|e| e.outcome).collect::<Vec<_>>(),
        vec![AccessOutcome::Denied],
        "a refused read leaves exactly one entry"
    );
    assert_eq!(
        logged[0].fields,
        serde_json::json!([]),
        "nothing was disclosed"
    );
    let err = repo
        .list(
            &wrong_patient,
            &field("clinic").eq(p.clinic.clone()),
            &[],
            Page::first(5),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let overwrite = Changes::new().set("diagnosis", "fake overwrite");
    let err = repo
        .update(&wrong_patient, &p.id, overwrite)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = repo.delete(&wrong_patient, &p.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let untouched = repo.get(&care.treating(), &p.id).await.unwrap().unwrap();
    assert!(untouched == p, "neither write reached the record");

    // Break-glass: a clinician without relationship or consent, in an emergency.
    udl_testkit::logs::capture();
    let stranger_clinician = w.user(Role::Clinician).await;
    let emergency = acting(
        stranger_clinician,
        Role::Clinician,
        Purpose::Emergency,
        care.patient,
    );
    assert!(repo.get(&emergency, &p.id).await.unwrap().is_some());
    let entry = last_entry(&w).await;
    assert_eq!(
        (entry.purpose, entry.outcome),
        (Purpose::Emergency, AccessOutcome::Allowed)
    );
    assert!(udl_testkit::logs::captured().contains("break-glass PHI access"));
    let billing_emergency = acting(support, Role::Support, Purpose::Emergency, care.patient);
    assert_denied(&w, &repo, &billing_emergency, p.id).await;
    w.finish().await;
}
