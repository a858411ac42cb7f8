//! The token vault through `DataLayer` on the real PostgreSQL: deterministic tokens that reveal
//! nothing, originals kept only encrypted, and detokenization allowed by role and purpose and
//! audited either way.

use udl::postgres::models::AccessOutcome;
use udl::{AccessContext, ErrorKind, Purpose, Role};

use crate::common;
use common::*;

#[tokio::test]
async fn tokens_are_deterministic_and_detokenizing_is_allowed_by_role_and_purpose_and_audited() {
    let w = world(true).await;
    let vault = w.data.token_vault().unwrap();
    let patient = format!("{}-patient", canary());
    let token = vault.tokenize("patient_id", &patient).await.unwrap();
    assert!(
        token.starts_with("tok_") && !token.contains(&patient),
        "{token}"
    );
    assert_eq!(
        vault.tokenize("patient_id", &patient).await.unwrap(),
        token,
        "deterministic"
    );
    let other = vault
        .tokenize("patient_id", "another-fake-patient")
        .await
        .unwrap();
    assert_ne!(other, token);
    assert_ne!(
        vault.tokenize("mrn", &patient).await.unwrap(),
        token,
        "kinds do not collide"
    );

    let pg = w.data.postgres().unwrap();
    let rows: String =
        sqlx::query_scalar("SELECT string_agg(row_to_json(v)::text, '') FROM udl_token_vault v")
            .fetch_one(pg.pool())
            .await
            .unwrap();
    assert!(
        !rows.contains(&patient),
        "the vault holds the original encrypted only"
    );

    let clinician =
        AccessContext::new("clinician-fake-2", Role::Clinician, Purpose::Treatment).unwrap();
    assert_eq!(vault.detokenize(&clinician, &token).await.unwrap(), patient);
    let logged = w.entries_of(&clinician).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(
        (logged[0].operation.as_str(), logged[0].outcome),
        ("detokenize", AccessOutcome::Allowed)
    );
    assert_eq!(
        logged[0].patient_id.as_deref(),
        Some(patient.as_str()),
        "the accounting of disclosures sees it"
    );

    let billing = AccessContext::new("billing-fake-1", Role::Billing, Purpose::Payment).unwrap();
    let err = vault.detokenize(&billing, &token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.to_string().contains(&patient));
    let logged = w.entries_of(&billing).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].outcome, AccessOutcome::Denied);

    let err = vault.detokenize(&clinician, "tok_0000").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    w.finish().await;
}
