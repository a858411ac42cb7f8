//! The change relay under crashes, on the real PostgreSQL and Cassandra, as a test binary of
//! its own (one test restarts PostgreSQL, which no other test may see): relays killed with
//! SIGKILL again and again, a standby taking over from a killed leader, and PostgreSQL
//! restarted under a relay. Each time ScyllaDB ends up holding exactly the event ids the
//! changes imply — read independently from a twin slot through PostgreSQL's SQL interface —
//! and each record's last event matches its row.

#[allow(dead_code)]
#[path = "integration/common/mod.rs"]
mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{world, World};
use futures_util::TryStreamExt as _;
use udl_testkit::{services, wait};

/// One test at a time: the PostgreSQL restart would break the others.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn child_program() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join("cdc_relay")
}

/// A relay in a process of its own, and the states it printed.
struct RelayProcess {
    child: Child,
    states: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl RelayProcess {
    fn start(w: &World) -> Self {
        Self::start_with(&w.vars)
    }

    /// A relay configured by `vars` alone.
    fn start_with(vars: &[(String, String)]) -> Self {
        let mut child = Command::new(child_program())
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .env("UDL__CDC__HEARTBEAT", "1s")
            .env("UDL__CDC__BATCH_DELAY", "10ms")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the relay child starts (cargo builds it with the tests)");
        let stdout = child.stdout.take().unwrap();
        let (tx, states) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        RelayProcess { child, states }
    }

    /// Waits until it prints `state` (`running`, `standby`).
    async fn reaches(&mut self, state: &str) {
        let wanted = format!("state {state}");
        let reached = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = self.states.recv().await {
                assert!(!line.starts_with("state halted"), "{line}");
                if line == wanted {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(reached == Ok(true), "the relay never reached {state}");
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The slot and publication of the test's schema, and a twin slot over the same publication
/// that nothing consumes: what PostgreSQL's changes imply is read from it.
struct Capture {
    slot: String,
    publication: String,
    twin: String,
}

async fn capture(w: &World) -> Capture {
    let pg = w.data.postgres().unwrap();
    let settings = udl::sync::RelaySettings::for_schema(&w.namespace);
    let tables: Vec<&'static str> = w
        .data
        .registry()
        .entities()
        .into_iter()
        .filter(|e| e.store == Some(udl::StoreKind::POSTGRES))
        .map(|e| e.name)
        .collect();
    let tables = udl::sync::slot::existing_tables(pg, &tables).await.unwrap();
    // The publication exists before either slot, so both decode every change after them.
    udl::sync::slot::ensure_publication(pg, &settings.publication, &tables)
        .await
        .unwrap();
    udl::sync::slot::ensure_slot(pg, &settings.slot)
        .await
        .unwrap();
    let twin = format!("{}_twin", settings.slot);
    udl::sync::slot::ensure_slot(pg, &twin).await.unwrap();
    Capture {
        slot: settings.slot,
        publication: settings.publication,
        twin,
    }
}

impl Capture {
    /// Every event id the changes since the slots were made imply: the commit position of
    /// each transaction (from its `B` message) and each change's place in it.
    async fn expected_ids(&self, w: &World) -> BTreeSet<String> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
                 'proto_version', '1', 'publication_names', $2)",
        )
        .bind(&self.twin)
        .bind(&self.publication)
        .fetch_all(w.data.postgres().unwrap().pool())
        .await
        .unwrap();
        let mut ids = BTreeSet::new();
        let (mut position, mut ordinal) = (0u64, 0u32);
        for data in rows {
            match data[0] {
                b'B' => {
                    position = u64::from_be_bytes(data[1..9].try_into().unwrap());
                    ordinal = 0;
                }
                b'I' | b'U' | b'D' => {
                    ids.insert(udl::sync::event::event_id(position, ordinal));
                    ordinal += 1;
                }
                _ => {}
            }
        }
        ids
    }

    async fn drop_all(&self, w: &World) {
        let pg = w.data.postgres().unwrap();
        // drop_capture waits for a killed relay's walsender to let go of the slot.
        udl::sync::slot::drop_capture(pg, &self.slot, &self.publication)
            .await
            .unwrap();
        sqlx::query("SELECT pg_drop_replication_slot($1)")
            .bind(&self.twin)
            .execute(pg.pool())
            .await
            .unwrap();
    }
}

/// Every event in `ce_events`: id → (type, subject, data).
async fn sink(w: &World) -> HashMap<String, (String, Option<String>, String)> {
    let scylla = w.data.scylla().unwrap();
    let cql = format!(
        "SELECT id, type, subject, data FROM \"{}\".ce_events",
        scylla.keyspace()
    );
    let rows: Vec<(String, String, Option<String>, String)> = scylla
        .session()
        .get_session()
        .query_iter(cql, ())
        .await
        .unwrap()
        .rows_stream::<(String, String, Option<String>, String)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, t, s, d)| (id, (t, s, d)))
        .collect()
}

/// Waits until the sink holds as many events as the changes imply, then checks it holds
/// exactly those ids, and that every app_config row's last event matches the row.
async fn assert_sink_matches(w: &World, capture: &Capture) {
    let expected = capture.expected_ids(w).await;
    assert!(!expected.is_empty());
    let events = wait::until(
        &format!("{} events in ScyllaDB", expected.len()),
        Duration::from_secs(300),
        || async {
            let events = sink(w).await;
            (events.len() >= expected.len()).then_some(events)
        },
    )
    .await;
    let stored: BTreeSet<String> = events.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&stored).take(5).collect();
    let extra: Vec<_> = stored.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );

    assert_latest_state_matches(w, &events).await;
}

/// The last event of each key (ids order by commit position) says what its app_config row
/// is now, and every row has events.
async fn assert_latest_state_matches(
    w: &World,
    events: &HashMap<String, (String, Option<String>, String)>,
) {
    let mut last: HashMap<String, (&String, &String, &String)> = HashMap::new();
    for (id, (event_type, subject, data)) in events {
        let Some(key) = subject else { continue };
        if !event_type.starts_with("ce.app_config.") {
            continue;
        }
        let newer = last.get(key).is_none_or(|(seen, _, _)| *seen < id);
        if newer {
            last.insert(key.clone(), (id, event_type, data));
        }
    }
    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT key, value FROM app_config")
            .fetch_all(w.data.postgres().unwrap().pool())
            .await
            .unwrap();
    let rows: HashMap<String, serde_json::Value> = rows.into_iter().collect();
    for (key, (_, event_type, data)) in &last {
        match rows.get(key) {
            None => assert_eq!(*event_type, "ce.app_config.deleted", "{key}"),
            Some(value) => {
                let data: serde_json::Value = serde_json::from_str(data).unwrap();
                assert_eq!(&data["value"], value, "{key}: {event_type}");
            }
        }
    }
    let without: Vec<&String> = rows
        .keys()
        .filter(|k| !last.contains_key(*k))
        .take(5)
        .collect();
    assert!(without.is_empty(), "rows without events: {without:?}");
}

/// Writes `transactions` transactions of 100 changes each to app_config, straight to
/// PostgreSQL (a writer around udl): 60 inserts, 30 updates of the previous transaction's
/// keys, 10 deletes of older ones. A transaction that fails (PostgreSQL going away) is left
/// to whatever PostgreSQL made of it, and the writer goes on once it answers again.
async fn write_changes(pg: udl::postgres::PgStore, first: i64, transactions: i64) {
    for t in first..first + transactions {
        let work = async {
            let mut tx = pg.pool().begin().await?;
            sqlx::query(
                "INSERT INTO app_config (key, value, updated_at, version)
                 SELECT 'k' || g, to_jsonb(g), now(), 1 FROM generate_series($1::bigint, $1 + 59) g",
            )
            .bind(t * 60)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE app_config SET value = to_jsonb($2::bigint), version = version + 1
                 WHERE key IN (SELECT 'k' || g FROM generate_series($1::bigint, $1 + 29) g)",
            )
            .bind((t - 1) * 60)
            .bind(-t)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM app_config
                 WHERE key IN (SELECT 'k' || g FROM generate_series($1::bigint, $1 + 9) g)",
            )
            .bind((t - 2) * 60 + 50)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        if work.await.is_err() {
            wait::until(
                "PostgreSQL answers again",
                Duration::from_secs(120),
                || async { sqlx::query("SELECT 1").execute(pg.pool()).await.ok() },
            )
            .await;
        }
    }
}

/// The test's own JetStream stream name.
fn bus_stream(w: &World) -> String {
    let name: String = w
        .namespace
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("K_{name}")
}

/// The bus holds every implied event once, in commit order, and the Go and Python consumers
/// each read exactly that; then the stream goes.
async fn assert_bus_matches(w: &World, capture: &Capture, stream: &str) {
    use udl_testkit::consumers::{read_stream, Consumer};
    let expected: Vec<String> = capture.expected_ids(w).await.into_iter().collect();
    for consumer in [Consumer::Python, Consumer::Go] {
        let stream = stream.to_owned();
        let lines = tokio::task::spawn_blocking(move || read_stream(consumer, &stream))
            .await
            .unwrap();
        let ids: Vec<String> = lines
            .iter()
            .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            ids.len(),
            expected.len(),
            "{consumer:?}: one line per event"
        );
        assert!(
            ids == expected,
            "{consumer:?}: every event once, in commit order"
        );
    }
    let client = async_nats::connect(udl_testkit::servers::nats_url())
        .await
        .unwrap();
    async_nats::jetstream::new(client)
        .delete_stream(stream)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_killed_at_random_points_lose_and_duplicate_nothing() {
    let _serial = SERIAL.lock().await;
    let w = world(true).await;
    let capture = capture(&w).await;
    let stream = bus_stream(&w);
    let mut vars = w.vars.clone();
    vars.extend([
        (
            "UDL__NATS__URL".to_owned(),
            udl_testkit::servers::nats_url(),
        ),
        ("UDL__NATS__STREAM".to_owned(), stream.clone()),
        (
            "UDL__NATS__SUBJECT_PREFIX".to_owned(),
            format!("{stream}.ce"),
        ),
    ]);
    let writer = tokio::spawn(write_changes(w.data.postgres().unwrap().clone(), 1, 1000));
    let mut relay = RelayProcess::start_with(&vars);
    for _ in 0..20 {
        relay.reaches("running").await;
        let streamed = Duration::from_millis(fastrand::u64(100..700));
        tokio::time::sleep(streamed).await; // a random kill point, not a synchronisation
        relay.kill();
        relay = RelayProcess::start_with(&vars);
    }
    writer.await.unwrap();
    relay.reaches("running").await;
    assert_sink_matches(&w, &capture).await;
    relay.kill();
    assert_bus_matches(&w, &capture, &stream).await;
    capture.drop_all(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_leader() {
    let _serial = SERIAL.lock().await;
    let w = world(true).await;
    let capture = capture(&w).await;
    let mut leader = RelayProcess::start(&w);
    leader.reaches("running").await;
    let mut standby = RelayProcess::start(&w);
    standby.reaches("standby").await;
    let pg = w.data.postgres().unwrap().clone();
    write_changes(pg.clone(), 1, 50).await;
    wait::until(
        "the leader has sent events",
        Duration::from_secs(60),
        || async { (!sink(&w).await.is_empty()).then_some(()) },
    )
    .await;
    let writer = tokio::spawn(write_changes(pg, 51, 50));
    leader.kill();
    standby.reaches("running").await;
    writer.await.unwrap();
    assert_sink_matches(&w, &capture).await;
    standby.kill();
    capture.drop_all(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_the_relay_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let _restart = services::RestartOnDrop;
    let w = world(true).await;
    let capture = capture(&w).await;
    let mut relay = RelayProcess::start(&w);
    relay.reaches("running").await;
    let pg = w.data.postgres().unwrap().clone();
    write_changes(pg.clone(), 1, 20).await;
    let writer = tokio::spawn(write_changes(pg.clone(), 21, 40));
    services::crash("postgres");
    services::up();
    writer.await.unwrap();
    relay.reaches("running").await;
    assert_sink_matches(&w, &capture).await;
    relay.kill();
    capture.drop_all(&w).await;
}

/// Rows in app_config before the snapshot is asked for.
const SNAPSHOT_ROWS: i64 = 1_000_000;

/// Updates (and now and then deletes) random rows of app_config around udl, a transaction
/// of 50 at a time, 20 a second (a steady load the relay keeps up with), until `stop` turns
/// true; returns how many transactions it wrote.
async fn churn(pg: udl::postgres::PgStore, stop: tokio::sync::watch::Receiver<bool>) -> u64 {
    let mut written = 0;
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    while !*stop.borrow() {
        pace.tick().await;
        let random_keys =
            "SELECT 's' || (1 + floor(random() * $1))::bigint FROM generate_series(1, 50)";
        let statement = if written % 10 == 9 {
            format!("DELETE FROM app_config WHERE key IN ({random_keys})")
        } else {
            format!(
                "UPDATE app_config SET value = to_jsonb(-$2::bigint), version = version + 1
                 WHERE key IN ({random_keys})"
            )
        };
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(SNAPSHOT_ROWS)
            .bind(written as i64)
            .execute(pg.pool())
            .await
            .unwrap();
        written += 1;
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_killed_halfway_resumes_and_ends_with_postgres_state() {
    let _serial = SERIAL.lock().await;
    let w = world(true).await;
    let pg = w.data.postgres().unwrap().clone();
    sqlx::query(
        "INSERT INTO app_config (key, value, updated_at, version)
         SELECT 's' || g, to_jsonb(g), now(), 1 FROM generate_series(1, $1) g",
    )
    .bind(SNAPSHOT_ROWS)
    .execute(pg.pool())
    .await
    .unwrap();
    let capture = capture(&w).await;
    let config = udl::config::from_sources(None, w.vars.clone()).unwrap();
    let id = w
        .data
        .request_snapshot(&config, "app_config", &[], 4096)
        .await
        .unwrap();

    let (stop_churn, churning) = tokio::sync::watch::channel(false);
    let churn = tokio::spawn(churn(pg.clone(), churning));
    let mut relay = RelayProcess::start(&w);
    relay.reaches("running").await;
    let halfway = SNAPSHOT_ROWS / 2;
    wait::until("half the rows copied", Duration::from_secs(600), || async {
        let progress = w.data.snapshot_progress(id).await.unwrap();
        (progress.rows_read >= halfway).then_some(())
    })
    .await;
    relay.kill();
    let cut = w.data.snapshot_progress(id).await.unwrap();
    assert!(cut.rows_read < SNAPSHOT_ROWS, "killed before the end");
    let mut relay = RelayProcess::start(&w);
    relay.reaches("running").await;
    let done = wait::until("the snapshot ends", Duration::from_secs(900), || async {
        let progress = w.data.snapshot_progress(id).await.unwrap();
        progress.ended().then_some(progress)
    })
    .await;
    stop_churn.send(true).unwrap();
    let transactions = churn.await.unwrap();
    assert_eq!(done.state, "done", "{:?}", done.reason);
    assert!(transactions > 0, "the snapshot ran under changes");
    assert!(
        done.rows_read >= SNAPSHOT_ROWS - 50 * transactions as i64 / 10,
        "every row not deleted meanwhile was read: {done:?}"
    );

    w.wait_acknowledged(&capture.slot, Duration::from_secs(300))
        .await;
    let events = sink(&w).await;
    let snapshot_events = events
        .values()
        .filter(|(event_type, _, _)| event_type == "ce.app_config.snapshot")
        .count() as i64;
    assert!(
        snapshot_events >= done.rows_sent,
        "every event the snapshot sent is there (a chunk cut off by the kill may be there twice)"
    );
    assert_latest_state_matches(&w, &events).await;
    relay.kill();
    capture.drop_all(&w).await;
}
