//! Change data capture: a therapy session written to PostgreSQL reaches ScyllaDB's
//! `ce_events` as a sanitized CloudEvent — the public topic and the minutes as they are, the
//! patient as a vault token, the notes and the room code left out — and the redaction ledger
//! says what was done to which field. Needs `[postgres]`, `[privacy]` and `[scylla]`; with
//! `[nats]` the event is on the JetStream bus too (`examples/consumers` read it from Python
//! and Go).

use udl::postgres::{Migration, Migrator};
use udl::sync::RelayState;
use udl::{AccessContext, Entity, Purpose, Result, Role};
use uuid::Uuid;

/// What each field's declaration does on the way to analytics is the point here.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "therapy_sessions", store = "postgres")]
struct TherapySession {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(phi, tokenize)] // sealed here; a joinable token in analytics
    patient_ref: String,
    #[udl(public)]
    topic: String,
    #[udl(phi)] // sealed here; never leaves
    notes: String,
    #[udl(internal, no_export)]
    room_code: String,
    #[udl(internal)]
    minutes: i64,
}

const DDL: &str = "CREATE TABLE therapy_sessions (id UUID PRIMARY KEY, patient_ref BYTEA NOT NULL,
    topic TEXT NOT NULL, notes BYTEA NOT NULL, room_code TEXT NOT NULL, minutes BIGINT NOT NULL)";

#[tokio::main]
async fn main() -> Result<()> {
    let config = udl_examples::config()?;
    let data = udl_examples::connect().await?;
    let mut migrations = udl::postgres::models::migrations();
    migrations.push(Migration::new(
        migrations.len() as i64 + 1,
        "therapy_sessions",
        DDL,
    ));
    Migrator::new(migrations)?.up(data.postgres()?).await?;
    data.register::<TherapySession>()?;

    let relay = data.configured_relay(&config).await?;
    assert!(
        relay.check().await?.is_empty(),
        "every table matches its declaration"
    );
    let mut events = relay.subscribe();
    let mut state = relay.state();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    state.wait_for(|s| *s == RelayState::Running).await.ok();

    let session = TherapySession {
        id: Uuid::new_v4(),
        patient_ref: "fake-patient-0042".into(),
        topic: "sleep".into(),
        notes: "fake notes: patient reports poor sleep".into(),
        room_code: "fake-room-7".into(),
        minutes: 50,
    };
    let ctx = AccessContext::system("change-capture-example");
    data.repository::<TherapySession>()?
        .create(&ctx, session.clone())
        .await?;

    let event = loop {
        let event = events.recv().await.expect("the relay runs");
        if event.subject == Some(session.id.to_string()) {
            break event;
        }
    };
    println!("{:#}", event.to_cloudevent()); // durable in ScyllaDB's ce_events by now
    assert_eq!(event.event_type(), "ce.therapy_sessions.created");
    assert!(event.data["patient_ref"]
        .as_str()
        .is_some_and(|t| t.starts_with("tok_")));
    assert!(event.data.get("notes").is_none() && event.data.get("room_code").is_none());

    let auditor = AccessContext::new("auditor-fake-1", Role::Auditor, Purpose::Operations)?;
    let ledger = data.redaction_ledger()?;
    let entries = ledger
        .read(&auditor, data.audit_writer()?, &event.id)
        .await?;
    println!("ledger: {}", entries[0].actions); // tokenized patient_ref; stripped notes, room_code

    stop.send(true).ok();
    running.await.expect("the relay task")?;
    let settings = udl::relay_settings(&config, data.postgres()?.schema());
    udl::sync::slot::drop_capture(data.postgres()?, &settings.slot, &settings.publication).await
}
