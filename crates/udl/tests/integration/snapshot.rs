//! Snapshots (batch sync) on the real PostgreSQL and Cassandra: rows that were in a table
//! before capture began reach ScyllaDB through the relay's sanitizing path, chunk by chunk,
//! while the relay streams updates to the same rows; in the end the last event of every
//! selected row says what PostgreSQL holds, rows the conditions leave out are not copied,
//! and no PHI reaches ScyllaDB.

use std::collections::HashMap;
use std::time::Duration;

use udl::sync::snapshot::Condition;
use udl::Changes;
use udl_testkit::wait;

use crate::capture_kit::*;
use crate::change_capture::{session, world_with_sessions, TherapySession};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_under_concurrent_updates_ends_with_every_rows_latest_state() {
    let w = world_with_sessions().await;
    w.data.register::<TherapySession>().unwrap();
    let canary = canary();
    let sessions = w.data.repository::<TherapySession>().unwrap();
    // Written before capture began: only a snapshot can carry them.
    let rows: Vec<TherapySession> = (0..1200).map(|n| session(&canary, n)).collect();
    sessions.create_many(&ctx(), rows.clone()).await.unwrap();

    let config = config_of(&w);
    let relay = configured_relay(&w, &config).await;
    let running = start(relay).await;
    // Sessions of 30 minutes or more (minutes = 30 + n): 1170 of them.
    let conditions = vec!["minutes>=60".parse::<Condition>().unwrap()];
    let id = w
        .data
        .request_snapshot(&config, "therapy_sessions", &conditions, 100)
        .await
        .unwrap();
    assert_eq!(w.data.snapshot_progress(id).await.unwrap().total_rows, 1170);

    // Updates through udl while the snapshot runs, until it is done.
    let mut updates = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let progress = loop {
        let progress = w.data.snapshot_progress(id).await.unwrap();
        if progress.ended() {
            break progress;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the snapshot did not end: {progress:?}"
        );
        let row = &rows[fastrand::usize(..rows.len())];
        let changes = Changes::new().set("topic", format!("updated-{updates}"));
        sessions.update(&ctx(), &row.id, changes).await.unwrap();
        updates += 1;
    };
    assert_eq!(progress.state, "done", "{:?}", progress.reason);
    assert_eq!(progress.rows_read, 1170);
    assert_eq!(progress.chunks, 12, "1170 rows in chunks of 100");
    assert!(updates > 0, "the snapshot ran under updates");

    wait_acknowledged(&w).await;
    running.stop().await;

    let stored = stored_events(&w.data).await;
    let snapshot_events = stored
        .iter()
        .filter(|e| e.event_type == "ce.therapy_sessions.snapshot")
        .count() as i64;
    assert_eq!(snapshot_events, progress.rows_sent, "each sent once");
    // Event ids order by commit position: the last one per row is its latest state.
    let mut latest: HashMap<&str, &Stored> = HashMap::new();
    for event in &stored {
        if let Some(subject) = event.subject.as_deref() {
            latest.insert(subject, event);
        }
    }
    let vault = w.data.token_vault().unwrap();
    let mut copied = 0;
    for row in &rows {
        let now = sessions.get_required(&ctx(), &row.id).await.unwrap();
        match latest.get(row.id.to_string().as_str()) {
            Some(event) => {
                assert!(row.minutes >= 60 || event.event_type.ends_with(".updated"));
                assert_eq!(event.data["topic"], now.topic.as_str(), "{}", row.id);
                assert_eq!(event.data["minutes"], now.minutes);
                assert_eq!(
                    event.data["patient_ref"],
                    vault.token_of("patient_ref", &row.patient_ref).as_str()
                );
                copied += 1;
            }
            None => assert!(row.minutes < 60, "a selected row without events"),
        }
    }
    assert!(copied >= 1170);
    assert_absent(&canary, w.scylla_contents().await.as_bytes(), "ScyllaDB");
    drop_capture(&w).await;
    w.finish().await;
}

#[tokio::test]
async fn a_snapshot_that_cannot_be_read_fails_and_says_why_while_streaming_goes_on() {
    let w = world_with_sessions().await;
    w.data.register::<TherapySession>().unwrap();
    let config = config_of(&w);
    // Conditions on what a declaration keeps back are refused when asked for.
    let on_phi = vec!["notes=fake".parse::<Condition>().unwrap()];
    let refused = w
        .data
        .request_snapshot(&config, "therapy_sessions", &on_phi, 100)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), udl::ErrorKind::InvalidInput);
    assert!(
        !refused.to_string().contains("fake"),
        "no value in the message"
    );
    let unknown = w
        .data
        .request_snapshot(&config, "no_such_table", &[], 100)
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), udl::ErrorKind::InvalidInput);

    // A table that no longer matches its declaration: the snapshot fails, the relay (which
    // does not capture a change to it meanwhile) goes on.
    let id = w
        .data
        .request_snapshot(&config, "therapy_sessions", &[], 100)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE therapy_sessions ADD COLUMN mood TEXT")
        .execute(w.data.postgres().unwrap().pool())
        .await
        .unwrap();
    let relay = configured_relay(&w, &config).await;
    let running = start(relay).await;
    let failed = wait::until("the snapshot fails", Duration::from_secs(30), || async {
        let progress = w.data.snapshot_progress(id).await.unwrap();
        progress.ended().then_some(progress)
    })
    .await;
    assert_eq!(failed.state, "failed");
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("column mood"),
        "{:?}",
        failed.reason
    );
    assert_eq!(*running.state.borrow(), udl::sync::RelayState::Running);
    running.stop().await;
    drop_capture(&w).await;
    w.finish().await;
}
