//! The `udl` binary end to end, against the local PostgreSQL.

use std::process::{Command, Output};

use udl_testkit::servers;

/// Runs `udl` with `args` and exactly `env` of the UDL variables.
pub fn udl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_udl"));
    cmd.args(args);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("UDL")) {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("udl runs")
}

/// Patients are users: their ids are user ids, UUIDs (obviously fake ones here).
pub const FAKE_PATIENT: &str = "00000000-fa4e-4000-8000-000000000001";
const OTHER_FAKE_PATIENT: &str = "00000000-fa4e-4000-8000-000000000002";
/// A key ring of one fake key (version 1).
pub const FAKE_KEY_RING: &str = "1:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";

/// The access-log entry of a fake clinician's read of note `n` of [`FAKE_PATIENT`]; the fifth
/// (`n == 4`) is an emergency (break-glass) access.
pub fn fake_read(n: usize) -> udl::postgres::models::PhiAccessLogEntry {
    udl::postgres::models::PhiAccessLogEntry {
        seq: 0,
        id: uuid::Uuid::new_v4(),
        occurred_at: chrono::Utc::now(),
        actor_id: "clinician-fake-1".into(),
        actor_role: udl::Role::Clinician,
        purpose: if n == 4 {
            udl::Purpose::Emergency
        } else {
            udl::Purpose::Treatment
        },
        patient_id: Some(FAKE_PATIENT.into()),
        entity: "session_notes".into(),
        record_ids: serde_json::json!([format!("note-{n}")]),
        fields: serde_json::json!(["body"]),
        operation: "get".into(),
        outcome: udl::postgres::models::AccessOutcome::Allowed,
        request_id: format!("req-fake-{n}"),
        prev_hash: None,
        hash: Vec::new(),
    }
}

/// Runs `sql` on `pg` with the append-only triggers off, as a superuser could.
pub async fn tamper(pg: &udl::postgres::PgStore, sql: &str) {
    let mut conn = pg.pool().acquire().await.unwrap();
    for step in [
        "SET session_replication_role = replica",
        sql,
        "SET session_replication_role = origin",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(step.to_owned()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

/// A fresh schema named after `prefix`, migrated by `udl migrate up` (which must succeed).
pub fn migrated_schema(prefix: &str) -> String {
    let schema = servers::unique_namespace(prefix);
    let url = servers::postgres_url();
    let env = [
        ("UDL__POSTGRES__URL", url.as_str()),
        ("UDL__POSTGRES__SCHEMA", schema.as_str()),
    ];
    let migrated = udl(&["migrate", "up"], &env);
    assert_eq!(migrated.status.code(), Some(0), "{:?}", text(&migrated));
    schema
}

/// A store on `schema` of the local PostgreSQL.
pub async fn store_on(schema: &str) -> udl::postgres::PgStore {
    let env = [
        ("UDL__POSTGRES__URL".to_owned(), servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA".to_owned(), schema.to_owned()),
    ];
    let config = udl::config::from_sources(None, env).expect("test config is valid");
    udl::postgres::PgStore::connect(config.store::<udl::postgres::PostgresConfig>().unwrap())
        .await
        .expect("PostgreSQL answers")
}

/// Drops `pg`'s schema and closes its pool.
pub async fn drop_schema(pg: &udl::postgres::PgStore) {
    let sql = format!("DROP SCHEMA \"{}\" CASCADE", pg.schema());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pg.pool())
        .await
        .expect("drop test schema");
    pg.pool().close().await;
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_prints_one_line_per_problem_and_exits_2_without_secrets() {
    let dir = std::env::temp_dir().join(servers::unique_namespace("udl_cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("udl.toml");
    std::fs::write(
        &file,
        "[postgres]\nurl = \"mysql://app:fake-s3cret@db/x\"\n[postgres.pool]\nmax = 0\n\
         [redis]\nurl = \"redis://:fake-s3cret@\"\n[mongo]\nurl = \"mongodb://h\"\nsurprise = true\n",
    )
    .unwrap();
    let out = udl(
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[("UDL__SCYLLA__PASSWORD", "fake-s3cret")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    assert!(
        lines.iter().all(|l| l.starts_with("invalid config: ")),
        "{stderr}"
    );
    for key in [
        "postgres.url",
        "postgres.pool.max",
        "redis.url",
        "mongo.surprise",
        "scylla.nodes",
    ] {
        assert!(stderr.contains(key), "no line for {key}:\n{stderr}");
    }
    assert!(!format!("{stdout}{stderr}").contains("fake-s3cret"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_check_redacts_credentials() {
    let out = udl(
        &["config", "check"],
        &[(
            "UDL__POSTGRES__URL",
            "postgres://app:fake-s3cret@db.example.test/udl?sslmode=require",
        )],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("postgres://app:***@db.example.test/udl?sslmode=require"),
        "{stdout}"
    );
    assert!(!stdout.contains("fake-s3cret"));
}

#[test]
fn unreachable_store_exits_3() {
    let out = udl(
        &["migrate", "up"],
        &[(
            "UDL__POSTGRES__URL",
            "postgres://u:fake-s3cret@127.0.0.1:1/udl",
        )],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("Unavailable"), "{stderr}");
    assert!(!stderr.contains("fake-s3cret"));
}

#[test]
fn migrate_up_twice_then_tampering_is_refused() {
    let schema = servers::unique_namespace("cli");
    let url = servers::postgres_url();
    let env = [
        ("UDL__POSTGRES__URL", url.as_str()),
        ("UDL__POSTGRES__SCHEMA", schema.as_str()),
    ];

    let first = udl(&["migrate", "up"], &env);
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    assert!(
        text(&first).0.contains(&format!(
            "applied {} migration(s)",
            udl::postgres::models::migrations().len()
        )),
        "{:?}",
        text(&first)
    );
    let second = udl(&["migrate", "up"], &env);
    assert_eq!(second.status.code(), Some(0));
    assert!(
        text(&second).0.contains("up to date"),
        "{:?}",
        text(&second)
    );
    let status = udl(&["migrate", "status"], &env);
    assert_eq!(status.status.code(), Some(0));
    assert_eq!(
        text(&status).0.matches("applied 20").count(),
        udl::postgres::models::migrations().len(),
        "{}",
        text(&status).0
    );

    // Simulate an edited migration file: the recorded checksum no longer matches.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let sql =
            format!("UPDATE \"{schema}\".udl_migrations SET checksum = 'edited' WHERE version = 2");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let status = udl(&["migrate", "status"], &env);
    assert_eq!(status.status.code(), Some(1));
    assert!(text(&status).0.contains("MODIFIED"), "{}", text(&status).0);
    let refused = udl(&["migrate", "up"], &env);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused)
            .1
            .contains("migration 2 (billing) was edited after it was applied"),
        "{}",
        text(&refused).1
    );

    drop_schemas(&[schema]);
}

/// Drops the PostgreSQL schemas a test made.
fn drop_schemas(schemas: &[String]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&servers::postgres_url())
            .await
            .unwrap();
        for schema in schemas {
            let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    });
}

#[test]
fn migrate_covers_mongo_when_configured() {
    let database = servers::unique_namespace("cli");
    let url = servers::mongo_url();
    let env = [
        ("UDL__MONGO__URL", url.as_str()),
        ("UDL__MONGO__DATABASE", database.as_str()),
    ];
    let first = udl(&["migrate", "up"], &env);
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    assert!(
        text(&first).0.contains("mongo: applied 1 migration(s): 1"),
        "{:?}",
        text(&first)
    );
    let second = udl(&["migrate", "up"], &env);
    assert!(
        text(&second).0.contains("mongo: up to date"),
        "{:?}",
        text(&second)
    );
    let status = udl(&["migrate", "status"], &env);
    assert_eq!(status.status.code(), Some(0));
    assert!(
        text(&status).0.contains("collections_and_indexes"),
        "{}",
        text(&status).0
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = mongodb::Client::with_uri_str(&url).await.unwrap();
        client.database(&database).drop().await.unwrap();
    });
}

#[test]
fn migrate_without_any_store_is_a_config_error() {
    let out = udl(&["migrate", "up"], &[]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out)
        .1
        .contains("no store with migrations is configured"));
}

#[test]
fn migrate_covers_scylla_when_configured() {
    let keyspace = servers::unique_namespace("cli");
    let node = servers::scylla_node();
    let env = [
        ("UDL__SCYLLA__NODES", node.as_str()),
        ("UDL__SCYLLA__KEYSPACE", keyspace.as_str()),
        ("UDL__SCYLLA__CONSISTENCY", "one"),
    ];
    let first = udl(&["migrate", "up"], &env);
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    assert!(
        text(&first)
            .0
            .contains("scylla: applied 6 migration(s): 1, 2, 3, 4, 5, 6"),
        "{:?}",
        text(&first)
    );
    let second = udl(&["migrate", "up"], &env);
    assert!(
        text(&second).0.contains("scylla: up to date"),
        "{:?}",
        text(&second)
    );
    let status = udl(&["migrate", "status"], &env);
    assert_eq!(status.status.code(), Some(0));
    let listing = text(&status).0;
    assert!(
        listing.contains(&format!("scylla (keyspace {keyspace})"))
            && listing.contains("time_series"),
        "{listing}"
    );

    drop_keyspace(&keyspace);
}

#[test]
fn migrate_up_needs_none_of_the_tables_it_creates_and_ends_without_a_panic() {
    // A fresh keyspace and database, with the analytics spool and the privacy layers
    // configured: migrating must not start either (both use tables migrations create).
    let keyspace = servers::unique_namespace("cli_spool");
    let spool = std::env::temp_dir().join(&keyspace);
    let mut env = all_stores();
    env.extend([
        ("UDL__SCYLLA__KEYSPACE", keyspace.clone()),
        ("UDL__MONGO__DATABASE", keyspace.clone()),
        ("UDL__SCYLLA__SPOOL_DIR", spool.display().to_string()),
        ("UDL__PRIVACY__KEY_RING", FAKE_KEY_RING.to_owned()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        let out = udl(&["migrate", "up"], &env);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("scylla: "), "{stdout}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let failing = udl(
        &["migrate", "up"],
        &[
            ("UDL__MONGO__URL", &servers::mongo_url()),
            ("UDL__MONGO__DATABASE", &keyspace),
            ("UDL__SCYLLA__NODES", "127.0.0.1:1"),
        ],
    );
    let (stdout, stderr) = text(&failing);
    assert_eq!(failing.status.code(), Some(3), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = mongodb::Client::with_uri_str(&servers::mongo_url())
            .await
            .unwrap();
        client.database(&keyspace).drop().await.unwrap();
    });
    drop_keyspace(&keyspace);
    let _ = std::fs::remove_dir_all(spool);
}

#[test]
fn id_arguments_are_refused_when_empty_or_misshapen_before_anything_is_read() {
    let pg = servers::postgres_url();
    let env = [("UDL__POSTGRES__URL", pg.as_str())];
    for args in [
        &[
            "compliance",
            "report",
            "--actor",
            "auditor-fake-1",
            "--patient",
            "",
        ][..],
        &[
            "compliance",
            "report",
            "--actor",
            "auditor-fake-1",
            "--patient",
            "patient-1",
        ],
        &[
            "compliance",
            "report",
            "--actor",
            "",
            "--patient",
            FAKE_PATIENT,
        ],
        &["compliance", "report", "--actor", "tab\there"],
        &["keys", "rotate", "--batch", "0"],
    ] {
        let out = udl(args, &env);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: invalid value"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn logs_follow_rust_log_unless_udl_log_says_otherwise_as_text_or_json_on_stderr() {
    let pg = servers::postgres_url();
    let schemas = std::cell::RefCell::new(Vec::new());
    let migrate_fresh = |log: &[(&str, &str)]| {
        let schema = servers::unique_namespace("cli_logs");
        schemas.borrow_mut().push(schema.clone());
        let mut env = vec![
            ("UDL__POSTGRES__URL", pg.as_str()),
            ("UDL__POSTGRES__SCHEMA", schema.as_str()),
        ];
        env.extend_from_slice(log);
        let out = udl(&["migrate", "up"], &env);
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        text(&out).1
    };
    let applied = |stderr: &str| {
        stderr
            .lines()
            .filter(|l| l.contains("migration applied"))
            .count()
    };

    assert_eq!(
        applied(&migrate_fresh(&[])),
        0,
        "the default is warnings only"
    );
    let text_logs = migrate_fresh(&[("RUST_LOG", "info")]);
    let migrations = udl::postgres::models::migrations().len();
    assert_eq!(applied(&text_logs), migrations, "{text_logs}");
    assert!(
        !text_logs.contains('\u{1b}'),
        "colour codes in a piped log: {text_logs}"
    );
    let quiet = migrate_fresh(&[("RUST_LOG", "info"), ("UDL_LOG", "error")]);
    assert_eq!(applied(&quiet), 0, "UDL_LOG is the more specific: {quiet}");

    let json = migrate_fresh(&[("UDL_LOG", "info"), ("UDL_LOG_FORMAT", "json")]);
    let events: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert_eq!(events.len(), migrations, "{json}");
    assert!(events
        .iter()
        .all(|e| e["level"] == "INFO" && e["fields"]["message"] == "migration applied"));

    let bad = migrate_fresh(&[("RUST_LOG", "info,=[")]);
    let first = bad.lines().next().unwrap_or_default();
    assert!(first.starts_with("udl: ignoring RUST_LOG"), "{bad}");
    drop_schemas(&schemas.take());
}

/// Every local store, as `scripts/services env` describes them.
fn all_stores() -> Vec<(&'static str, String)> {
    vec![
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__REDIS__URL", servers::redis_url()),
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
    ]
}

fn health_with(overrides: &[(&'static str, &str)]) -> Output {
    let mut env = all_stores();
    for (key, value) in overrides {
        env.retain(|(k, _)| k != key);
        env.push((key, (*value).to_owned()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    udl(&["health", "--timeout", "3s"], &env)
}

/// A fresh ScyllaDB keyspace with the platform's tables (`udl migrate up`); drop it after.
pub fn migrated_keyspace() -> String {
    let keyspace = servers::unique_namespace("cli_ks");
    let node = servers::scylla_node();
    let env = [
        ("UDL__SCYLLA__NODES", node.as_str()),
        ("UDL__SCYLLA__KEYSPACE", keyspace.as_str()),
        ("UDL__SCYLLA__CONSISTENCY", "one"),
    ];
    let out = udl(&["migrate", "up"], &env);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    keyspace
}

/// Drops a keyspace a test made (on a thread of its own, so async tests may call it too).
pub fn drop_keyspace(keyspace: &str) {
    let keyspace = keyspace.to_owned();
    let dropping = std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let session = scylla::client::session_builder::SessionBuilder::new()
                .known_node(servers::scylla_node())
                .build()
                .await
                .unwrap();
            session
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), ())
                .await
                .unwrap();
        })
    });
    dropping.join().unwrap();
}

#[test]
fn health_is_ready_degraded_or_down_by_which_store_answers() {
    let missing = servers::unique_namespace("cli_none");
    let unmigrated = health_with(&[("UDL__SCYLLA__KEYSPACE", &missing)]);
    assert_eq!(unmigrated.status.code(), Some(1), "{:?}", text(&unmigrated));
    let listing = text(&unmigrated).0;
    assert!(
        listing.lines().any(|l| l.starts_with("scylla")
            && l.contains(&format!("keyspace {missing} does not exist"))
            && l.contains("udl migrate up")),
        "{listing}"
    );

    let keyspace = migrated_keyspace();
    let health_with = |overrides: &[(&'static str, &str)]| {
        let mut all = vec![("UDL__SCYLLA__KEYSPACE", keyspace.as_str())];
        all.extend_from_slice(overrides);
        health_with(&all)
    };
    let all = health_with(&[]);
    assert_eq!(all.status.code(), Some(0), "{:?}", text(&all));
    let listing = text(&all).0;
    for store in ["postgres", "mongo", "redis", "scylla"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(store) && l.contains(" up ")),
            "{store}: {listing}"
        );
    }
    assert!(listing.ends_with("overall: ready\n"), "{listing}");
    // MongoDB says what it is, how it is deployed and what udl found it can do.
    assert!(
        listing.lines().any(|l| l.starts_with("mongo")
            && l.contains("MongoDB 6.0")
            && l.contains("replica set rs0, primary 127.0.0.1:27017")
            && l.contains("transactions, ttl")),
        "{listing}"
    );

    let no_redis = health_with(&[("UDL__REDIS__URL", "redis://127.0.0.1:1/")]);
    assert_eq!(no_redis.status.code(), Some(1), "{:?}", text(&no_redis));
    let listing = text(&no_redis).0;
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("redis") && l.contains("DOWN")),
        "{listing}"
    );
    assert!(listing.contains("overall: degraded"), "{listing}");

    let no_postgres = health_with(&[(
        "UDL__POSTGRES__URL",
        "postgres://postgres@127.0.0.1:1/udl?sslmode=disable",
    )]);
    assert_eq!(
        no_postgres.status.code(),
        Some(2),
        "{:?}",
        text(&no_postgres)
    );
    assert!(text(&no_postgres).0.contains("overall: down"));
    drop_keyspace(&keyspace);
}

#[test]
fn audit_verify_reports_an_intact_chain_then_the_first_broken_link() {
    let schema = servers::unique_namespace("cli");
    let url = servers::postgres_url();
    let env = [
        ("UDL__POSTGRES__URL", url.as_str()),
        ("UDL__POSTGRES__SCHEMA", schema.as_str()),
    ];
    let migrated = udl(&["migrate", "up"], &env);
    assert_eq!(migrated.status.code(), Some(0), "{:?}", text(&migrated));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = udl::config::from_sources(
        None,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let pg = runtime.block_on(async {
        let pg = udl::postgres::PgStore::connect(
            config.store::<udl::postgres::PostgresConfig>().unwrap(),
        )
        .await
        .unwrap();
        let writer =
            udl::privacy::audit::AuditWriter::start(pg.clone(), std::time::Duration::from_secs(5));
        for n in 0..5 {
            writer.append(fake_read(n)).await.unwrap();
        }
        pg
    });

    let intact = udl(&["audit", "verify"], &env);
    assert_eq!(intact.status.code(), Some(0), "{:?}", text(&intact));
    assert!(
        text(&intact).0.contains("intact: 5 entries checked"),
        "{:?}",
        text(&intact)
    );
    let later = udl(&["audit", "verify", "--from", "2099-01-01"], &env);
    assert_eq!(later.status.code(), Some(0));
    assert!(text(&later).0.contains("no entries"), "{:?}", text(&later));
    let bad = udl(&["audit", "verify", "--to", "last tuesday"], &env);
    assert_eq!(bad.status.code(), Some(2), "{:?}", text(&bad));

    let accounting = udl(
        &[
            "compliance",
            "report",
            "--actor",
            "auditor-fake-1",
            "--patient",
            FAKE_PATIENT,
        ],
        &env,
    );
    assert_eq!(accounting.status.code(), Some(0), "{:?}", text(&accounting));
    let json: serde_json::Value = serde_json::from_str(&text(&accounting).0).unwrap();
    let disclosures = json["disclosures"].as_array().unwrap();
    assert_eq!(disclosures.len(), 5);
    assert_eq!(disclosures[0]["actor_id"], "clinician-fake-1");
    assert_eq!(disclosures[4]["break_glass"], true);
    let nobody = udl(
        &[
            "compliance",
            "report",
            "--actor",
            "auditor-fake-1",
            "--patient",
            OTHER_FAKE_PATIENT,
        ],
        &env,
    );
    let json: serde_json::Value = serde_json::from_str(&text(&nobody).0).unwrap();
    assert_eq!(json["disclosures"].as_array().unwrap().len(), 0);
    let page = udl(
        &[
            "compliance",
            "report",
            "--actor",
            "auditor-fake-1",
            "--patient",
            FAKE_PATIENT,
            "--format",
            "html",
        ],
        &env,
    );
    let html = text(&page).0;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains(&format!("Patient {FAKE_PATIENT}")), "{html}");
    // The break-glass access, listed under "needs attention" and in the full table.
    assert_eq!(html.matches("<tr class=\"flag\">").count(), 2, "{html}");
    let summary = udl(
        &[
            "compliance",
            "report",
            "--actor",
            "auditor-fake-1",
            "--from",
            "2020-01-01",
        ],
        &env,
    );
    let json: serde_json::Value = serde_json::from_str(&text(&summary).0).unwrap();
    // The five accesses, and the auditor's three reports before this one: reading the log is
    // recorded too, after the report is built and before it is shown.
    assert_eq!(
        (json["total"].as_i64(), json["break_glass"].as_i64()),
        (Some(8), Some(1))
    );
    assert_eq!(json["rows"][0]["accesses"], 4, "{json}");
    assert_eq!(json["rows"][0]["patients"], 1);
    let rows = json["rows"].as_array().unwrap();
    let auditor = rows
        .iter()
        .find(|r| r["actor_id"] == "auditor-fake-1")
        .unwrap();
    assert_eq!(auditor["accesses"], 3, "{auditor}");
    assert_eq!(auditor["patients"], 2, "{auditor}");
    let anonymous = udl(&["compliance", "report"], &env);
    assert_eq!(
        anonymous.status.code(),
        Some(2),
        "the reader must say who they are"
    );

    runtime.block_on(tamper(&pg, "DELETE FROM phi_access_log WHERE seq = 3"));
    let broken = udl(&["audit", "verify"], &env);
    assert_eq!(broken.status.code(), Some(1), "{:?}", text(&broken));
    assert!(
        text(&broken).0.contains("BROKEN at seq 4"),
        "{:?}",
        text(&broken)
    );
    runtime.block_on(async {
        let sql = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pg.pool())
            .await
            .unwrap();
    });
}

#[test]
fn udl_demo_walks_the_journey_through_the_gateway_and_writes_the_patients_report() {
    let env = all_stores();
    let mut borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    borrowed.push(("UDL__PRIVACY__KEY_RING", FAKE_KEY_RING));
    for run in ["first", "second (the namespace is emptied first)"] {
        let out = udl(&["demo"], &borrowed);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{run} run:\n{stdout}\n{stderr}");
        assert!(!stdout.contains('✖'), "{stdout}");
        for step in [
            "therapy note with PHI written",
            "retrieval for \"trouble sleeping\": \"Sleep hygiene",
            "1 from MongoDB, 2 from this process's cache",
            "without consent, was refused: 403",
            "break-glass read was allowed",
            "the PHI is sealed at rest",
            "1 refused, 1 break-glass",
        ] {
            assert!(stdout.contains(step), "{run} run lacks {step:?}:\n{stdout}");
        }
        let path = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("Compliance report for the patient: "))
            .expect("the report's path is printed");
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.contains("data-metric=\"break_glass\">1<"), "{html}");
    }
}

#[test]
fn udl_media_registers_an_asset_by_its_contents_hash_then_lists_and_shows_it() {
    let schema = migrated_schema("cli_media");
    let url = servers::postgres_url();
    let env = [
        ("UDL__POSTGRES__URL", url.as_str()),
        ("UDL__POSTGRES__SCHEMA", schema.as_str()),
    ];
    let file = std::env::temp_dir().join(format!("{schema}.mp4"));
    std::fs::write(&file, b"fake breathing exercise video").unwrap();
    let path = file.display().to_string();
    let sha = udl::postgres::models::content_hash(b"fake breathing exercise video");
    let uri = "https://media.example.test/fake/box-breathing.mp4";
    let register = |uri: &str, sha256: &str| {
        udl(
            &[
                "media",
                "register",
                "--uri",
                uri,
                "--source",
                "Fake Publisher",
                "--license",
                "CC-BY-4.0",
                "--expires-at",
                "2027-06-30",
                "--grace",
                "14d",
                "--file",
                &path,
                "--sha256",
                sha256,
            ],
            &env,
        )
    };
    let registered = register(uri, &sha);
    assert_eq!(registered.status.code(), Some(0), "{:?}", text(&registered));
    let out = text(&registered).0;
    assert!(out.contains(&format!("sha256:       {sha}")), "{out}");
    assert!(
        out.contains("status:       active") && out.contains("grace period: 14days"),
        "{out}"
    );

    let wrong = udl::postgres::models::content_hash(b"other content");
    let mismatch = register("https://media.example.test/fake/other.mp4", &wrong);
    assert_eq!(mismatch.status.code(), Some(1), "{:?}", text(&mismatch));
    assert!(
        text(&mismatch).1.contains("not the expected one"),
        "{:?}",
        text(&mismatch)
    );
    assert!(!text(&mismatch).1.contains(&wrong));
    let duplicate = register(uri, &sha);
    assert_eq!(
        duplicate.status.code(),
        Some(1),
        "the uri is unique: {:?}",
        text(&duplicate)
    );

    let listed = udl(&["media", "list", "--status", "active"], &env);
    let out = text(&listed).0;
    assert!(out.contains(uri) && out.contains("1 asset(s)"), "{out}");
    let none = text(&udl(&["media", "list", "--status", "disabled"], &env)).0;
    assert!(none.contains("0 asset(s)"), "{none}");
    let shown = udl(&["media", "show", uri], &env);
    assert_eq!(shown.status.code(), Some(0), "{:?}", text(&shown));
    assert!(
        text(&shown)
            .0
            .contains("expires at:   2027-06-30T00:00:00+00:00"),
        "{:?}",
        text(&shown)
    );
    let missing = udl(
        &["media", "show", "https://media.example.test/fake/none"],
        &env,
    );
    assert_eq!(missing.status.code(), Some(1));
    drop_schemas(&[schema]);
    let _ = std::fs::remove_file(file);
}
