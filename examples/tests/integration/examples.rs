//! Every example runs against the real servers, each in namespaces of its own, and exits 0.

use std::process::Command;

use base64::Engine as _;
use udl::DataLayer;
use udl_testkit::consumers::{read_stream, Consumer};
use udl_testkit::servers;

/// A fresh key ring for `[privacy]`: one random 32-byte key-encryption key.
fn key_ring() -> String {
    let key = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Runs the example binary at `path` with PostgreSQL, MongoDB, Redis (and ScyllaDB when
/// `scylla`) configured in namespaces of its own, checks it succeeded, and removes what it
/// left in the servers.
fn run(name: &str, path: &str, scylla: bool) {
    let namespace = servers::unique_namespace("ex");
    let extra = if scylla {
        scylla_vars(&namespace)
    } else {
        Vec::new()
    };
    run_in(name, path, &namespace, extra);
}

fn scylla_vars(namespace: &str) -> Vec<(&'static str, String)> {
    vec![
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE", namespace.to_owned()),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
    ]
}

/// Runs the example in `namespace` with the stores and `extra`; its standard output.
fn run_in(name: &str, path: &str, namespace: &str, extra: Vec<(&str, String)>) -> String {
    let mut vars = vec![
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", namespace.to_owned()),
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", namespace.to_owned()),
        ("UDL__REDIS__URL", servers::redis_url()),
        ("UDL__REDIS__KEY_PREFIX", format!("{namespace}:")),
    ];
    vars.extend(extra);
    // Only this configuration: none of the caller's `UDL__*` variables.
    let output = Command::new(path)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("UDL__PRIVACY__KEY_RING", key_ring())
        .output()
        .unwrap_or_else(|e| panic!("example {name} could not start: {e}"));
    clean_up(&vars, namespace);
    assert!(
        output.status.success(),
        "example {name} failed ({}); is every server up (scripts/services up)?\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Drops the schema, database, keyspace and Redis keys of `namespace`.
fn clean_up(vars: &[(&str, String)], namespace: &str) {
    let config =
        udl::config::from_sources(None, vars.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .expect("the examples' configuration is valid");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let Ok(data) = DataLayer::connect(&config).await else {
            return;
        };
        if let Ok(pg) = data.postgres() {
            let sql = format!("DROP SCHEMA IF EXISTS \"{namespace}\" CASCADE");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pg.pool())
                .await;
        }
        if let Ok(mongo) = data.mongo() {
            let _ = mongo.database().drop().await;
        }
        if let Ok(scylla) = data.scylla() {
            let cql = format!("DROP KEYSPACE IF EXISTS \"{namespace}\"");
            let _ = scylla.session().get_session().query_unpaged(cql, ()).await;
        }
        if let Ok(redis) = data.redis() {
            let mut conn = redis.connection();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{namespace}:*"))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
    });
}

/// One test per example, named after it; `with scylla` also configures ScyllaDB.
macro_rules! examples {
    ($($name:ident $(with $scylla:ident)?),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let scylla = false $(|| stringify!($scylla) == "scylla")?;
                run(stringify!($name), env!(concat!("CARGO_BIN_EXE_", stringify!($name))), scylla);
            }
        )*
    };
}

examples! {
    entities_and_crud,
    phi_read_with_consent,
    cached_read,
    transaction,
    rag_retrieval,
    sessions_and_rate_limits,
    analytics with scylla,
    compliance_report,
    retention_and_jobs,
    projection with scylla,
    outbox with scylla,
    snapshot with scylla,
}

/// The change-capture example with ScyllaDB and the NATS bus; then the Python and the Go
/// consumer in `examples/consumers` each read the bus and print every event once.
#[test]
fn change_capture() {
    let namespace = servers::unique_namespace("ex");
    let name: String = namespace
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let stream = format!("EX_{name}");
    let mut extra = scylla_vars(&namespace);
    extra.extend([
        ("UDL__NATS__URL", servers::nats_url()),
        ("UDL__NATS__STREAM", stream.clone()),
        ("UDL__NATS__SUBJECT_PREFIX", format!("ex{name}.ce")),
    ]);
    let printed = run_in(
        "change_capture",
        env!("CARGO_BIN_EXE_change_capture"),
        &namespace,
        extra,
    );
    // The example prints the event as a JSON document, then the ledger entry.
    let json_end = printed.find("\n}").expect("the event is printed") + 2;
    let event: serde_json::Value = serde_json::from_str(&printed[..json_end]).unwrap();
    let line = format!(
        "{} ce.therapy_sessions.created {}",
        event["id"].as_str().unwrap(),
        event["subject"].as_str().unwrap()
    );

    let from_python = read_stream(Consumer::Python, &stream);
    let from_go = read_stream(Consumer::Go, &stream);
    drop_stream(&stream);
    assert!(from_python.contains(&line), "{from_python:?}");
    assert_eq!(from_go, from_python, "both see the same events, in order");
    let ids: std::collections::HashSet<&str> =
        from_go.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(ids.len(), from_go.len(), "each event once");
}

fn drop_stream(stream: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let client = async_nats::connect(servers::nats_url()).await.unwrap();
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream)
            .await;
    });
}
