//! `DataLayer::connect` on the real servers: every configured store, each record store behind
//! its own resilience layer, configured from `<store>.resilience`.

use udl::{AccessContext, ErrorKind, Purpose, Role, StoreKind, UdlConfig};
use udl_testkit::fixtures::{note, Note};
use udl_testkit::servers;

#[tokio::test]
async fn repositories_come_behind_each_stores_resilience_layer() {
    let database = servers::unique_namespace("dl");
    let vars = [
        ("UDL__MONGO__URL", servers::mongo_url()),
        ("UDL__MONGO__DATABASE", database.clone()),
        ("UDL__MONGO__RESILIENCE__TIMEOUT", "2s".to_owned()),
        ("UDL__MONGO__RESILIENCE__BREAKER_FAILURES", "3".to_owned()),
    ];
    let config = UdlConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    assert_eq!(
        config.mongo.as_ref().unwrap().resilience.breaker_failures,
        3
    );
    let data = match udl::DataLayer::connect(&config).await {
        Ok(d) => d,
        Err(e) => servers::unreachable("FerretDB", &servers::mongo_url(), &e),
    };
    let ctx = AccessContext::new("data-layer-test", Role::Service, Purpose::Operations).unwrap();
    let notes = data.repository::<Note>(StoreKind::Mongo).unwrap();
    let n = note(1);
    notes.create(&ctx, n.clone()).await.unwrap();
    assert!(notes.get(&ctx, &n.id).await.unwrap() == Some(n));

    let err = data
        .records(StoreKind::Postgres)
        .err()
        .expect("not configured");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
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
    let err = UdlConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v.to_owned())))
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
