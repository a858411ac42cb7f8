//! The transactional outbox on the real PostgreSQL, Cassandra and NATS: an event emitted in a
//! transaction reaches ScyllaDB and the bus with its transaction's row changes, in commit
//! order, sanitized by its declaration (tokens, never the PHI); one emitted in a transaction
//! that rolls back is never delivered; an event that is not declared as one, or too large for
//! the bus, is refused when emitted.

use udl::postgres::models::AppConfigEntry;
use udl::{AccessContext, Entity, ErrorKind, Purpose, Role};
use uuid::Uuid;

use crate::capture_kit::*;
use crate::common::*;

/// What the scheduling service announces when a patient books a session.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "appointment_booked", store = "outbox")]
pub struct AppointmentBooked {
    #[udl(id, internal)]
    pub id: Uuid,
    /// Joinable downstream, readable nowhere but the vault.
    #[udl(phi, tokenize)]
    pub patient_ref: String,
    #[udl(public)]
    pub slot: String,
    /// Never leaves: the event does not carry it.
    #[udl(phi)]
    pub reason: String,
}

fn booked(canary: &str, slot: &str) -> AppointmentBooked {
    AppointmentBooked {
        id: Uuid::new_v4(),
        patient_ref: format!("{canary}-patient"),
        slot: slot.into(),
        reason: format!("{canary} fake reason for the visit"),
    }
}

fn config_entry(key: &str) -> AppConfigEntry {
    AppConfigEntry {
        key: key.into(),
        value: serde_json::json!(1),
        description: None,
        updated_at: chrono::Utc::now(),
        version: 1,
    }
}

#[tokio::test]
async fn emitted_events_travel_with_their_transaction_and_rolled_back_ones_never_do() {
    let w = world(true).await;
    w.data.register::<AppointmentBooked>().unwrap();
    let bus = Bus::of(&w);
    let relay = configured_relay(&w, &bus.config(&w)).await;
    assert_eq!(relay.check().await.unwrap(), Vec::<String>::new());
    let running = start(relay).await;
    let canary = canary();
    let scheduler =
        AccessContext::new("scheduler-fake", Role::Service, Purpose::Operations).unwrap();

    let committed = booked(&canary, "mon-09:00");
    let (event, ctx_) = (committed.clone(), scheduler.clone());
    w.data
        .transaction(|tx| async move {
            let configs = tx.repository::<AppConfigEntry>()?;
            configs.create(&ctx(), config_entry("booking.open")).await?;
            tx.emit(&ctx_, event).await
        })
        .await
        .unwrap();

    let rolled_back = booked(&canary, "tue-10:00");
    let (event, ctx_) = (rolled_back.clone(), scheduler.clone());
    let failed: udl::Result<()> = w
        .data
        .transaction(|tx| async move {
            tx.emit(&ctx_, event).await?;
            Err(udl::Error::new(ErrorKind::Conflict, "the slot was taken"))
        })
        .await;
    assert_eq!(failed.unwrap_err().kind(), ErrorKind::Conflict);

    // Refused when emitted: a table's entity is no event, and an event the bus could not
    // carry would stop the relay; the transaction itself goes on.
    let (ctx_, huge) = (scheduler.clone(), booked(&canary, &"x".repeat(300 * 1024)));
    let last = booked(&canary, "wed-11:00");
    let event = last.clone();
    w.data
        .transaction(|tx| async move {
            let not_an_event = tx.emit(&ctx_, config_entry("not.an.event")).await;
            assert_eq!(not_an_event.unwrap_err().kind(), ErrorKind::InvalidInput);
            let too_large = tx.emit(&ctx_, huge).await.unwrap_err();
            assert_eq!(too_large.kind(), ErrorKind::InvalidInput);
            assert!(too_large.to_string().contains("bytes once sanitized"));
            tx.emit(&ctx_, event).await
        })
        .await
        .unwrap();

    wait_acknowledged(&w).await;
    running.stop().await;
    let events = stored_events(&w.data).await;
    let about = |id: Uuid| -> Vec<&Stored> {
        events
            .iter()
            .filter(|e| e.subject.as_deref() == Some(id.to_string().as_str()))
            .collect()
    };
    assert!(about(rolled_back.id).is_empty(), "never delivered");
    assert_eq!(about(last.id).len(), 1, "the next transaction's event");
    let emitted = about(committed.id);
    assert_eq!(emitted.len(), 1);
    let emitted = emitted[0];
    assert_eq!(emitted.event_type, "ce.appointment_booked.emitted");
    let vault = w.data.token_vault().unwrap();
    assert_eq!(
        emitted.data,
        serde_json::json!({
            "id": committed.id.to_string(),
            "patient_ref": vault.token_of("patient_ref", &committed.patient_ref),
            "slot": "mon-09:00",
        }),
        "sanitized by its declaration"
    );
    let row = events
        .iter()
        .find(|e| e.subject.as_deref() == Some("booking.open"))
        .expect("the transaction's row change");
    assert_eq!(row.position, emitted.position, "one transaction");
    assert!(row.id < emitted.id, "in the order they were made");

    // The ledger says what was done to the event's fields, and the access log who emitted
    // it.
    let auditor = AccessContext::new("auditor-fake", Role::Auditor, Purpose::Operations).unwrap();
    let entries = w
        .data
        .redaction_ledger()
        .unwrap()
        .read(&auditor, w.data.audit_writer().unwrap(), &emitted.id)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = entries[0]
        .actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["field"].as_str().unwrap(), a["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("patient_ref", "tokenized"), ("reason", "stripped")]
    );
    let emits = w.entries_of(&scheduler).await;
    assert!(emits
        .iter()
        .all(|e| e.operation == "emit" && e.entity == "appointment_booked"));
    assert_eq!(emits.len(), 3, "every event emitted, committed or not");

    let on_bus: Vec<String> = bus
        .messages()
        .await
        .iter()
        .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
        .collect();
    assert!(on_bus.iter().any(|m| m.contains(&committed.id.to_string())));
    assert!(!on_bus
        .iter()
        .any(|m| m.contains(&rolled_back.id.to_string())));
    assert_absent(&canary, on_bus.concat().as_bytes(), "NATS");
    assert_absent(&canary, w.scylla_contents().await.as_bytes(), "ScyllaDB");
    bus.delete().await;
    drop_capture(&w).await;
    w.finish().await;
}

#[tokio::test]
async fn an_outbox_message_that_breaks_its_declaration_halts_the_relay() {
    let w = world(true).await;
    w.data.register::<AppointmentBooked>().unwrap();
    let relay = configured_relay(&w, &config_of(&w)).await;
    let mut running = start(relay).await;
    // Written around udl: a PHI field the declaration keeps back, in the clear.
    let forged = serde_json::json!({
        "event": "appointment_booked",
        "data": {"id": Uuid::new_v4().to_string(), "reason": "fake forged reason"},
    });
    let emit = |schema: String| {
        let pool = w.data.postgres().unwrap().pool().clone();
        let forged = forged.to_string();
        async move {
            sqlx::query("SELECT pg_logical_emit_message(true, $1, $2)")
                .bind(udl::sync::outbox::outbox_prefix(&schema))
                .bind(forged)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // Every slot reads every logical message: another schema's are not this relay's.
    emit(format!("{}_other", w.namespace)).await;
    wait_acknowledged(&w).await;
    assert_eq!(*running.state.borrow(), udl::sync::RelayState::Running);
    emit(w.namespace.clone()).await;
    let state = running
        .reaches("the relay halts", |s| {
            matches!(s, udl::sync::RelayState::Halted(_))
        })
        .await;
    assert!(
        format!("{state:?}").contains("field reason, which its declaration keeps back"),
        "{state:?}"
    );
    running.stop().await;
    assert!(!w.scylla_contents().await.contains("fake forged reason"));
    drop_capture(&w).await;
    w.finish().await;
}
