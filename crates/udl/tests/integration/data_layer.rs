//! `DataLayer::connect` on the real servers: every configured store, each record store behind
//! its own resilience layer, configured from `<store>.resilience`.

use udl::{AccessContext, ErrorKind, Purpose, Role, StoreKind};
use udl_testkit::fixtures::{note, Note};
use udl_testkit::servers;

/// An entity declaring a store this build has no backend for.
#[derive(udl::Entity, Clone, PartialEq)]
#[udl(table = "notes", store = "sqlite")]
struct SqliteNote {
    #[udl(id, internal)]
    id: uuid::Uuid,
}

#[tokio::test]
async fn repositories_come_behind_each_stores_resilience_layer() {
    let database = servers::unique_namespace("dl");
    let vars = [
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", database.clone()),
        ("UDL__MONGO__RESILIENCE__TIMEOUT", "2s".to_owned()),
        ("UDL__MONGO__RESILIENCE__BREAKER_FAILURES", "3".to_owned()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    assert_eq!(
        config
            .store::<udl::mongo::MongoConfig>()
            .unwrap()
            .resilience
            .breaker_failures,
        3
    );
    let data = match udl::DataLayer::connect(&config).await {
        Ok(d) => d,
        Err(e) => servers::unreachable("FerretDB", &servers::mongo_url(), &e),
    };
    let ctx = AccessContext::new("data-layer-test", Role::Service, Purpose::Operations).unwrap();
    let notes = data.repository_in::<Note>(StoreKind::MONGO).unwrap();
    let n = note(1);
    notes.create(&ctx, n.clone()).await.unwrap();
    assert!(notes.get(&ctx, &n.id).await.unwrap() == Some(n));

    let err = data
        .unaudited_records(StoreKind::POSTGRES)
        .err()
        .expect("not configured");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("add its [postgres] section"),
        "{err}"
    );

    // A store no backend of this build answers to is named as such, not as unconfigured.
    let err = data
        .repository::<SqliteNote>()
        .err()
        .expect("no such backend");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("this build has no sqlite backend"),
        "{err}"
    );
    data.mongo().unwrap().database().drop().await.unwrap();
}

#[test]
fn resilience_settings_are_checked() {
    let vars = [
        ("UDL__POSTGRES__URL", "postgres://h/db"),
        ("UDL__POSTGRES__RESILIENCE__READ_ATTEMPTS", "0"),
        ("UDL__POSTGRES__RESILIENCE__TIMEOUT", "soon"),
        ("UDL__POSTGRES__RESILIENCE__SURPRISE", "1"),
    ];
    let err = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v.to_owned())))
        .unwrap_err()
        .to_string();
    for key in [
        "resilience.read_attempts",
        "resilience.timeout",
        "resilience.surprise",
    ] {
        assert!(err.contains(&format!("postgres.{key}")), "{key}: {err}");
    }
}

/// MongoDB cut off (toxiproxy) while PostgreSQL answers: once its breaker has opened, document
/// reads fail at once with a temporary `Unavailable` naming MongoDB, and every
/// PostgreSQL-backed read and write keeps working.
#[tokio::test]
async fn with_mongo_down_documents_fail_fast_and_postgres_keeps_working() {
    let proxy = udl_testkit::toxiproxy::Proxy::to("127.0.0.1:27017");
    let schema = servers::unique_namespace("dl");
    let database = servers::unique_namespace("dl");
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema),
        ("UDL__POSTGRES__POOL__MIN", "0".to_owned()),
        (
            "UDL__MONGO__URL",
            format!("mongodb://{}/?directConnection=true", proxy.listen()),
        ),
        ("UDL__MONGO__DATABASE", database),
        ("UDL__MONGO__POOL__ACQUIRE_TIMEOUT", "1s".to_owned()),
        ("UDL__MONGO__RESILIENCE__TIMEOUT", "300ms".to_owned()),
        ("UDL__MONGO__RESILIENCE__READ_ATTEMPTS", "1".to_owned()),
        ("UDL__MONGO__RESILIENCE__BREAKER_FAILURES", "3".to_owned()),
        ("UDL__MONGO__RESILIENCE__BREAKER_OPEN_FOR", "1m".to_owned()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    let data = match udl::DataLayer::connect(&config).await {
        Ok(d) => d,
        Err(e) => servers::unreachable("PostgreSQL and FerretDB", proxy.listen(), &e),
    };
    udl::postgres::Migrator::new(vec![udl::postgres::Migration::new(
        1,
        "notes",
        udl_testkit::fixtures::NOTES_POSTGRES_DDL,
    )])
    .unwrap()
    .up(data.postgres().unwrap())
    .await
    .unwrap();
    let ctx = AccessContext::new("data-layer-test", Role::Service, Purpose::Operations).unwrap();
    let documents = data.repository_in::<Note>(StoreKind::MONGO).unwrap();
    let rows = data.repository_in::<Note>(StoreKind::POSTGRES).unwrap();
    let doc = note(1);
    documents.create(&ctx, doc.clone()).await.unwrap();

    proxy.set_enabled(false);
    for _ in 0..3 {
        let err = documents.get(&ctx, &doc.id).await.unwrap_err();
        assert!(err.is_temporary(), "{err}");
    }
    let started = std::time::Instant::now();
    let err = documents.get(&ctx, &doc.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("mongo"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(300),
        "fails at once: {:?}",
        started.elapsed()
    );
    let row = note(2);
    rows.create(&ctx, row.clone()).await.unwrap();
    assert!(rows.get(&ctx, &row.id).await.unwrap() == Some(row));
    let text = data.metrics().render();
    assert!(
        text.contains(r#"udl_breaker_state{store="mongo"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"udl_breaker_state{store="postgres"} 0"#),
        "{text}"
    );

    proxy.set_enabled(true);
    let pg = data.postgres().unwrap();
    let sql = format!("DROP SCHEMA \"{}\" CASCADE", pg.schema());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pg.pool())
        .await
        .unwrap();
    // FerretDB is reached through the proxy again by now; a failure only leaves a test database.
    let _ = data.mongo().unwrap().database().drop().await;
    data.shutdown(std::time::Duration::from_secs(1)).await;
}

/// Calls that do not go through a record store's layer (Redis structures, ScyllaDB's typed
/// APIs) are measured in the data layer's metrics too.
#[tokio::test]
async fn redis_structures_and_scylla_typed_apis_are_measured() {
    let vars = [
        ("UDL__REDIS__URL", servers::redis_url()),
        (
            "UDL__REDIS__KEY_PREFIX",
            format!("{}:", servers::unique_namespace("dl")),
        ),
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE", servers::unique_namespace("dl")),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    let data = match udl::DataLayer::connect(&config).await {
        Ok(d) => d,
        Err(e) => servers::unreachable("Redis and Cassandra", &servers::redis_url(), &e),
    };
    let sessions = udl::redis::SessionStore::new(
        data.redis().unwrap().clone(),
        std::time::Duration::from_secs(60),
    );
    let session = sessions
        .create("fake-user-1", serde_json::json!({}))
        .await
        .unwrap();
    let scylla = data.scylla().unwrap();
    udl::scylla::models::migrator().up(scylla).await.unwrap();
    let series = udl::scylla::TimeSeries::new(scylla, 4).await.unwrap();
    let point = udl::scylla::Point {
        at: chrono::Utc::now(),
        value: 1.0,
    };
    series.write("fake.metric", point).await.unwrap();

    let text = data.metrics().render();
    for line in [
        r#"udl_operation_duration_seconds_count{store="redis",operation="sessions.create",outcome="ok"} 1"#,
        r#"udl_operation_duration_seconds_count{store="scylla",operation="time_series.write",outcome="ok"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    sessions.destroy(&session).await.unwrap();
    let drop = format!("DROP KEYSPACE IF EXISTS \"{}\"", scylla.keyspace());
    scylla
        .session()
        .get_session()
        .query_unpaged(drop, ())
        .await
        .unwrap();
}
