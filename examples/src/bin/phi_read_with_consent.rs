//! A clinician reads a patient's conversation: allowed by their care relationship, audited in
//! the PHI access log before the data is returned, decrypted on the way out. Anyone without a
//! relationship or consent is refused, and the refusal is audited too. Needs `[postgres]`,
//! `[mongo]` and `[privacy]`.

use udl::mongo::models::{Conversation, ConversationStatus, Message, MessageRole};
use udl::postgres::models::{PatientRelationship, RelationshipKind, User, UserStatus};
use udl::{AccessContext, ErrorKind, Json, Purpose, Result, Role};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let platform = AccessContext::system("onboarding");
    let users = data.repository::<User>()?;
    let (patient, clinician, stranger) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for (id, role) in [
        (patient, Role::Patient),
        (clinician, Role::Clinician),
        (stranger, Role::Clinician),
    ] {
        users.create(&platform, user(id, role)).await?;
    }
    let now = chrono::Utc::now();
    data.repository::<PatientRelationship>()?
        .create(
            &platform,
            PatientRelationship {
                id: Uuid::new_v4(),
                patient_id: patient,
                actor_id: clinician,
                kind: RelationshipKind::Therapist,
                valid_from: now - chrono::Duration::hours(1),
                valid_until: None,
                created_at: now,
                version: 1,
            },
        )
        .await?;

    let conversations = data.repository::<Conversation>()?;
    let as_patient =
        AccessContext::new(patient.to_string(), Role::Patient, Purpose::PatientRequest)?
            .for_patient(patient.to_string())?;
    let conversation = conversation(patient);
    let id = conversations.create(&as_patient, conversation).await?;

    let treating = AccessContext::new(clinician.to_string(), Role::Clinician, Purpose::Treatment)?
        .for_patient(patient.to_string())?;
    let read = conversations.get_required(&treating, &id).await?;
    println!("{read:?}"); // PHI fields show as <redacted>
    assert_eq!(read.messages.0.len(), 1);

    let other = AccessContext::new(stranger.to_string(), Role::Clinician, Purpose::Treatment)?
        .for_patient(patient.to_string())?;
    let refused = conversations.get(&other, &id).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    println!("refused: {refused}");
    Ok(())
}

fn user(id: Uuid, role: Role) -> User {
    let now = chrono::Utc::now();
    User {
        id,
        email: format!("fake-{id}@example.test"),
        display_name: "Fake Person".into(),
        role,
        status: UserStatus::Active,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn conversation(patient: Uuid) -> Conversation {
    let now = chrono::Utc::now();
    Conversation {
        id: Uuid::new_v4(),
        patient_id: patient,
        title: Some("fake check-in".into()),
        messages: Json(vec![Message {
            role: MessageRole::Patient,
            text: "fake: I slept badly".into(),
            at: now,
        }]),
        status: ConversationStatus::Active,
        started_at: now,
        updated_at: now,
        version: 1,
    }
}
