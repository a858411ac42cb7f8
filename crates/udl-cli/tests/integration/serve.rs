//! `udl serve` end to end: the daemon against the local servers, a Redis that is stopped for
//! real, a MongoDB slowed and PostgreSQL cut off by toxiproxy, and a SIGTERM while a request
//! is in flight; and `udl health` against a stopped Redis.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use udl_testkit::http::{self, Answer};
use udl_testkit::private_redis::PrivateRedis;
use udl_testkit::servers;
use udl_testkit::toxiproxy::Proxy;

/// A running `udl serve`; killed if the test ends without stopping it.
pub struct Daemon {
    child: Child,
    /// `host:port` the daemon listens on.
    pub address: String,
    /// Where its standard error (its logs) goes.
    log: std::path::PathBuf,
}

impl Daemon {
    pub fn start(env: &[(&str, String)]) -> Daemon {
        let log = std::env::temp_dir().join(format!("{}.log", servers::unique_namespace("serve")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_udl"));
        cmd.arg("serve")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"));
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("UDL")) {
            cmd.env_remove(name);
        }
        cmd.env("UDL__SERVE__ADDR", "127.0.0.1:0");
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let mut child = cmd.spawn().expect("udl runs");
        let mut first_line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let address = first_line
            .trim()
            .strip_prefix("udl serve: listening on ")
            .and_then(|url| url.split_once("://"))
            .map(|(_, address)| address)
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
            .to_owned();
        Daemon {
            child,
            address,
            log,
        }
    }

    /// Its process.
    pub fn child(&self) -> &Child {
        &self.child
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Answer {
        http::get(&self.address, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `/health/ready`, and how long it took.
    fn ready(&self) -> (Answer, Duration) {
        let started = Instant::now();
        let answer = self.get("/health/ready");
        (answer, started.elapsed())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("udl serve logged:\n{}", self.logs());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}

pub fn sigterm(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[tokio::test]
async fn serve_reports_a_stopped_redis_or_slow_mongo_as_degraded_and_postgres_cut_off_as_down() {
    let mut redis = PrivateRedis::start().await;
    let postgres = Proxy::to("127.0.0.1:5432");
    let mongo = Proxy::to("127.0.0.1:27017");
    let pg_url = servers::postgres_url().replacen("127.0.0.1:5432", postgres.listen(), 1);
    let keyspace = crate::cli::migrated_keyspace();
    let daemon = Daemon::start(&[
        ("UDL__POSTGRES__URL", pg_url),
        ("UDL__SCYLLA__KEYSPACE", keyspace.clone()),
        ("UDL__POSTGRES__POOL__MIN", "1".into()),
        (
            "UDL__MONGO__URL",
            format!("mongodb://{}/?directConnection=true", mongo.listen()),
        ),
        ("UDL__REDIS__URL", redis.url.clone()),
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__CONSISTENCY", "one".into()),
        ("UDL__SERVE__HEALTH_TIMEOUT", "2s".into()),
    ]);

    let live = daemon.get("/health/live");
    assert_eq!(live.status, 200);
    let (ready, _) = daemon.ready();
    assert_eq!(ready.status, 200, "{}", ready.body);
    let body = json(&ready);
    assert_eq!(body["status"], "ready", "{body}");
    for store in ["postgres", "mongo", "redis", "scylla"] {
        assert_eq!(body["stores"][store]["status"], "up", "{body}");
        assert!(body["stores"][store]["latency_ms"].as_f64().unwrap() > 0.0);
    }
    assert!(body["stores"]["postgres"]["pool"]["max"].as_u64().unwrap() >= 1);
    // Once the daemon's data layer is connected, each store's breaker shows too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while json(&daemon.ready().0)["stores"]["postgres"]["breaker"] != "closed" {
        assert!(Instant::now() < deadline, "the data layer never connected");
        std::thread::sleep(Duration::from_millis(100));
    }

    mongo.add_latency(3_000);
    let (slow, took) = daemon.ready();
    assert_eq!(slow.status, 200, "{}", slow.body);
    let body = json(&slow);
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["stores"]["mongo"]["error"], "timeout", "{body}");
    assert!(took < Duration::from_secs(5), "reported in {took:?}");
    mongo.remove_latency();
    let deadline = Instant::now() + Duration::from_secs(30);
    while json(&daemon.ready().0)["status"] != "ready" {
        assert!(Instant::now() < deadline, "MongoDB never answered again");
    }

    redis.stop();
    let (degraded, took) = daemon.ready();
    assert_eq!(
        degraded.status, 200,
        "degraded still serves: {}",
        degraded.body
    );
    let body = json(&degraded);
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["stores"]["redis"]["status"], "down", "{body}");
    assert!(body["stores"]["redis"]["error"].is_string(), "{body}");
    assert!(took < Duration::from_secs(5), "reported in {took:?}");
    let metrics = daemon.get("/metrics");
    assert!(
        metrics.headers.contains("openmetrics-text"),
        "{}",
        metrics.headers
    );
    assert!(
        metrics.body.contains(r#"udl_store_up{store="redis"} 0"#),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains(r#"udl_store_up{store="postgres"} 1"#));

    postgres.set_enabled(false);
    let (down, took) = daemon.ready();
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(json(&down)["status"], "down");
    assert_eq!(json(&down)["stores"]["postgres"]["status"], "down");
    assert!(took < Duration::from_secs(5), "reported in {took:?}");

    postgres.set_enabled(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.ready().0.status != 200 {
        assert!(Instant::now() < deadline, "PostgreSQL never came back");
    }
    assert_eq!(daemon.get("/nowhere").status, 404);
    crate::cli::drop_keyspace(&keyspace);
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_cleanly() {
    let postgres = Proxy::to("127.0.0.1:5432");
    let pg_url = servers::postgres_url().replacen("127.0.0.1:5432", postgres.listen(), 1);
    let mut daemon = Daemon::start(&[
        ("UDL__POSTGRES__URL", pg_url),
        // Far above the slow check's few round trips, even on a loaded machine.
        ("UDL__SERVE__HEALTH_TIMEOUT", "10s".into()),
    ]);
    assert_eq!(daemon.ready().0.status, 200);
    postgres.add_latency(1_000);

    // A slow readiness check in flight, its connection made before the next one...
    let slow = http::send(&daemon.address, "GET", "/health/ready", None).unwrap();
    let slow = std::thread::spawn(move || slow.finish());
    // ...so it was accepted: connections are accepted in order, and an answer on a later
    // connection means the daemon holds the slow one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while http::get(&daemon.address, "/health/live").is_err() {
        assert!(Instant::now() < deadline, "the daemon stopped answering");
    }
    sigterm(&daemon.child);

    let slow = slow
        .join()
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(slow.status, 200, "{}", slow.body);
    assert_eq!(json(&slow)["status"], "ready");
    let status = daemon.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    daemon
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut rest)
        .unwrap();
    assert!(
        rest.contains("draining") && rest.contains("stopped"),
        "{rest}"
    );
    assert!(
        http::get(&daemon.address, "/health/live").is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn udl_health_reports_a_stopped_redis_as_degraded_within_five_seconds() {
    let mut redis = PrivateRedis::start().await;
    redis.stop();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_udl"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("UDL")) {
        cmd.env_remove(name);
    }
    cmd.args(["health", "--timeout", "2s"])
        .env("UDL__POSTGRES__URL", servers::postgres_url())
        .env("UDL__REDIS__URL", &redis.url);
    let started = Instant::now();
    let out = cmd.output().expect("udl runs");
    let took = started.elapsed();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("redis") && l.contains("DOWN")),
        "{listing}"
    );
    assert!(took < Duration::from_secs(5), "reported in {took:?}");
}

/// Every event type in `keyspace`'s `ce_events`.
async fn event_types(keyspace: &str) -> Vec<String> {
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(servers::scylla_node())
        .build()
        .await
        .unwrap();
    let rows = session
        .query_unpaged(format!("SELECT type FROM \"{keyspace}\".ce_events"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    rows.rows::<(String,)>()
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect()
}

#[tokio::test]
async fn serve_with_cdc_runs_the_change_relay_snapshots_a_table_and_cdc_status_reports_it() {
    let schema = servers::unique_namespace("cli_cdc");
    let keyspace = crate::cli::migrated_keyspace();
    let env = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.clone()),
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE", keyspace.clone()),
        ("UDL__SCYLLA__CONSISTENCY", "one".into()),
        ("UDL__PRIVACY__KEY_RING", crate::cli::FAKE_KEY_RING.into()),
        ("UDL__CDC__HEARTBEAT", "1s".into()),
    ];
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let migrated = crate::cli::udl(&["migrate", "up"], &borrowed);
    assert_eq!(migrated.status.code(), Some(0));
    let check = crate::cli::udl(&["cdc", "check"], &borrowed);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{:?}",
        crate::cli::text(&check)
    );

    let mut daemon = Daemon::start(&env);
    let pg = sqlx::PgPool::connect(&servers::postgres_url())
        .await
        .unwrap();
    // Written around udl, as psql would: the relay captures it all the same.
    let wait_streaming =
        udl_testkit::wait::until("the relay streams", Duration::from_secs(60), || async {
            let status = crate::cli::udl(&["cdc", "status"], &borrowed);
            crate::cli::text(&status)
                .0
                .contains("state: running")
                .then_some(())
        });
    wait_streaming.await;
    let insert = format!(
        "INSERT INTO \"{schema}\".app_config (key, value, updated_at) VALUES ('cdc.serve', '1', now())"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(insert))
        .execute(&pg)
        .await
        .unwrap();
    udl_testkit::wait::until("the event in ScyllaDB", Duration::from_secs(60), || async {
        event_types(&keyspace)
            .await
            .contains(&"ce.app_config.created".to_owned())
            .then_some(())
    })
    .await;

    // Batch sync: rows already in the table, copied through the running relay in chunks.
    let rows = format!(
        "INSERT INTO \"{schema}\".app_config (key, value, updated_at)
         SELECT 'snap.' || g, to_jsonb(g), now() FROM generate_series(1, 250) g"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(rows))
        .execute(&pg)
        .await
        .unwrap();
    let snapshot = crate::cli::udl(
        &[
            "cdc",
            "snapshot",
            "app_config",
            "--where",
            "key>=snap.",
            "--chunk-rows",
            "100",
        ],
        &borrowed,
    );
    let (out, err) = crate::cli::text(&snapshot);
    assert_eq!(snapshot.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("250 rows to copy"), "{out}");
    assert!(
        out.contains("done: 250 rows read in 3 chunks"),
        "the final count: {out}"
    );
    assert!(err.contains("] 250/250"), "the progress bar: {err}");
    let snapshotted = event_types(&keyspace)
        .await
        .iter()
        .filter(|t| *t == "ce.app_config.snapshot")
        .count();
    let sent: usize = out
        .split_once(" sent as snapshot events")
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("the count sent: {out}"));
    assert_eq!(snapshotted, sent, "each event sent is in ScyllaDB");
    let refused = crate::cli::udl(
        &[
            "cdc",
            "snapshot",
            "users",
            "--where",
            "email=fake@example.test",
        ],
        &borrowed,
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a PII field cannot be selected on"
    );
    assert!(crate::cli::text(&refused).1.contains("cannot select on it"));

    sigterm(&daemon.child);
    assert_eq!(daemon.child.wait().unwrap().code(), Some(0));
    let status = crate::cli::udl(&["cdc", "status"], &borrowed);
    let (out, _) = crate::cli::text(&status);
    assert!(
        out.contains("state: stopped"),
        "the relay stopped cleanly: {out}"
    );
    // With no relay running, a snapshot waits, and the status says so.
    let queued = crate::cli::udl(
        &[
            "cdc",
            "snapshot",
            "app_config",
            "--where",
            "key=cdc.serve",
            "--no-wait",
        ],
        &borrowed,
    );
    let (out, _) = crate::cli::text(&queued);
    assert_eq!(queued.status.code(), Some(0), "{out}");
    assert!(
        out.contains("snapshot 2 of app_config: 1 rows to copy"),
        "{out}"
    );
    let status = crate::cli::udl(&["cdc", "status"], &borrowed);
    let (out, _) = crate::cli::text(&status);
    assert!(
        out.contains("snapshot 2 of app_config: pending, 0 of 1 rows read"),
        "{out}"
    );

    let slot = format!("udl_{schema}");
    // The daemon's walsender ends a moment after the daemon: the slot is busy until then.
    udl_testkit::wait::until("the slot is released", Duration::from_secs(30), || async {
        let active: bool = sqlx::query_scalar(
            "SELECT bool_or(active) FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&slot)
        .fetch_one(&pg)
        .await
        .unwrap_or(true);
        (!active).then_some(())
    })
    .await;
    sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(&slot)
        .execute(&pg)
        .await
        .unwrap();
    let drop = format!("DROP PUBLICATION \"{slot}\"; DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pg)
        .await
        .unwrap();
    crate::cli::drop_keyspace(&keyspace);
}
