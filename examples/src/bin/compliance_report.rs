//! The compliance side: a patient's id tokenized for analytics and turned back only for an
//! allowed role and purpose, the history of a changed PHI field, the access log's hash chain
//! verified, and the accounting of disclosures for the patient. Needs `[postgres]`, `[mongo]`
//! and `[privacy]`.

use udl::mongo::models::PatientInteractionLog;
use udl::privacy::audit::{report, verify_log};
use udl::{AccessContext, Changes, Entity, ErrorKind, Purpose, Result, Role, Value};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let patient = Uuid::new_v4();
    let own = AccessContext::new(patient.to_string(), Role::Patient, Purpose::PatientRequest)?
        .for_patient(patient.to_string())?;

    let vault = data.token_vault()?;
    let token = vault.tokenize("patient_id", &patient.to_string()).await?; // tok_…, stable
    assert_eq!(vault.detokenize(&own, &token).await?, patient.to_string());
    let analyst = AccessContext::new("analyst-fake-3", Role::Support, Purpose::Operations)?;
    let refused = vault.detokenize(&analyst, &token).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied); // audited as denied

    let logs = data.repository::<PatientInteractionLog>()?;
    let entry = PatientInteractionLog {
        id: Uuid::new_v4(),
        patient_id: patient,
        conversation_id: None,
        kind: "check_in".into(),
        detail: serde_json::json!({"mood": 2}),
        occurred_at: chrono::Utc::now(),
    };
    let id = logs.create(&own, entry).await?;
    logs.update(
        &own,
        &id,
        Changes::new().set("detail", serde_json::json!({"mood": 4})),
    )
    .await?;
    let changes = data
        .change_history()?
        .of(&own, PatientInteractionLog::meta(), &Value::Uuid(id))
        .await?;
    assert!(changes
        .iter()
        .any(|c| c.operation == "update" && c.field == "detail"));

    let pg = data.postgres()?;
    assert!(verify_log(pg, None, None).await?.intact());
    let disclosures = report::accounting(pg, &patient.to_string(), None, None).await?;
    println!(
        "{} accesses to the patient's data",
        disclosures.disclosures.len()
    );
    assert!(disclosures.disclosures.len() >= 4);
    Ok(())
}
