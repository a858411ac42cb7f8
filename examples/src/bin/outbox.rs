//! The transactional outbox: an event emitted inside a PostgreSQL transaction reaches the
//! sinks (ScyllaDB's `ce_events` here; the NATS bus too when `[nats]` is configured) once the
//! transaction commits, in commit order with its row changes, and never when it rolls back.
//! The event is sanitized by its own declaration: a `tokenize` field travels as its vault
//! token, any other PHI field not at all. Needs `[postgres]`, `[privacy]` and a sink.

use udl::sync::RelayState;
use udl::{AccessContext, Entity, Error, ErrorKind, Purpose, Result, Role};
use uuid::Uuid;

/// What the scheduling service announces when a patient books a session.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "appointment_booked", store = "outbox")]
struct AppointmentBooked {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(phi, tokenize)] // a joinable token in the event, never the value
    patient_ref: String,
    #[udl(public)]
    slot: String,
    #[udl(phi)] // never leaves the transaction
    reason: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let config = udl_examples::config()?;
    let data = udl_examples::connect().await?;
    data.register::<AppointmentBooked>()?;
    let relay = data.configured_relay(&config).await?;
    let mut durable = relay.subscribe();
    let mut state = relay.state();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    state.wait_for(|s| *s == RelayState::Running).await.ok();

    let scheduler = AccessContext::new("scheduler", Role::Service, Purpose::Operations)?;
    let booked = AppointmentBooked {
        id: Uuid::new_v4(),
        patient_ref: "fake-patient-42".into(),
        slot: "2026-12-08T09:00".into(),
        reason: "fake reason for the visit".into(),
    };
    let (ctx, event) = (scheduler.clone(), booked.clone());
    data.transaction(|tx| async move {
        // The booking's own rows go through tx.repository::<T>() here, in the same transaction.
        tx.emit(&ctx, event).await
    })
    .await?;

    let (ctx, taken) = (scheduler.clone(), booked.clone());
    let rolled_back: Result<()> = data
        .transaction(|tx| async move {
            tx.emit(
                &ctx,
                AppointmentBooked {
                    id: Uuid::new_v4(),
                    ..taken
                },
            )
            .await?;
            Err(Error::new(ErrorKind::Conflict, "the slot was taken"))
        })
        .await;
    assert!(rolled_back.is_err(), "its event is discarded with it");

    // Durable in every sink.
    let event = loop {
        let event = durable.recv().await.expect("the relay runs");
        if event.subject == Some(booked.id.to_string()) {
            break event;
        }
    };
    println!("{:#}", event.to_cloudevent());
    assert_eq!(event.event_type(), "ce.appointment_booked.emitted");
    assert!(event.data.get("reason").is_none(), "PHI never leaves");

    stop.send(true).ok();
    running.await.expect("the relay task")?;
    let settings = udl::relay_settings(&config, data.postgres()?.schema());
    udl::sync::slot::drop_capture(data.postgres()?, &settings.slot, &settings.publication).await
}
