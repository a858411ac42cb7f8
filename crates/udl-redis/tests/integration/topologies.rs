//! The same store on other deployments, chosen by configuration only: TLS (`rediss://`,
//! verified against a private CA) and a three-node Redis Cluster.

use crate::common;

use std::time::Duration;

use chrono::Utc;
use udl_config::StoreConfig as _;
use udl_core::ErrorKind;
use udl_redis::RedisConfig;
use udl_redis::{
    CoalescedGet, Counters, EmbeddingCache, RateLimit, RateLimiter, RedisStore, SessionStore,
};
use udl_testkit::servers;

fn config(extra: &[(&str, String)]) -> Result<RedisConfig, String> {
    let prefix = format!("{}:", servers::unique_namespace("topo"));
    let mut vars = vec![
        ("UDL__REDIS__KEY_PREFIX".to_owned(), prefix),
        (
            "UDL__REDIS__POOL__ACQUIRE_TIMEOUT".to_owned(),
            "2s".to_owned(),
        ),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    RedisConfig::from_sources(None, vars).map_err(|e| e.to_string())
}

async fn connect(extra: &[(&str, String)], server: &str) -> RedisStore {
    let config = config(extra).expect("test config is valid");
    match RedisStore::connect(&config).await {
        Ok(store) => store,
        Err(e) => servers::unreachable(server, config.url.expose(), &e),
    }
}

#[tokio::test]
async fn tls_is_verified_against_the_configured_ca() {
    let ca = servers::test_ca_cert().display().to_string();
    let store = connect(
        &[
            ("UDL__REDIS__URL", servers::redis_tls_url()),
            ("UDL__REDIS__TLS_CA_CERT", ca),
        ],
        "Redis (TLS)",
    )
    .await;
    store.health(Duration::from_secs(2)).await.unwrap();
    let cache = EmbeddingCache::new(store.clone(), Duration::from_secs(60));
    cache
        .set_many("fake-embed", &[("over tls", &[1.0, 2.0])])
        .await
        .unwrap();
    assert_eq!(
        cache
            .get_many("fake-embed", 2, &["over tls"])
            .await
            .unwrap(),
        [Some(vec![1.0, 2.0])]
    );
    common::cleanup(&store).await;

    // Without the CA the server's certificate is unknown: refused, not trusted blindly.
    let untrusted = config(&[("UDL__REDIS__URL", servers::redis_tls_url())]).unwrap();
    let err = match RedisStore::connect(&untrusted).await {
        Ok(_) => panic!("a certificate from an unknown CA was accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Internal),
        "{err}"
    );
}

async fn cluster_store() -> RedisStore {
    connect(
        &[
            ("UDL__REDIS__URL", servers::redis_cluster_url()),
            ("UDL__REDIS__CLUSTER", "true".to_owned()),
        ],
        "Redis Cluster",
    )
    .await
}

/// How many of the cluster's nodes hold keys under `store`'s prefix.
async fn nodes_holding_keys(store: &RedisStore) -> usize {
    let mut holding = 0;
    for port in [7101, 7102, 7103] {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(store.key("*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        holding += usize::from(!keys.is_empty());
    }
    holding
}

#[tokio::test]
async fn every_structure_works_on_a_cluster() {
    let store = cluster_store().await;
    store.health(Duration::from_secs(2)).await.unwrap();

    // Batches whose keys live on different nodes.
    let cache = EmbeddingCache::new(store.clone(), Duration::from_secs(60));
    let texts: Vec<String> = (0..40).map(|i| format!("fake text {i}")).collect();
    let vectors: Vec<Vec<f32>> = (0..40).map(|i| vec![i as f32, 0.5]).collect();
    let entries: Vec<(&str, &[f32])> = texts
        .iter()
        .map(String::as_str)
        .zip(vectors.iter().map(Vec::as_slice))
        .collect();
    cache.set_many("fake-embed", &entries).await.unwrap();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let found = cache.get_many("fake-embed", 2, &refs).await.unwrap();
    assert_eq!(found, vectors.into_iter().map(Some).collect::<Vec<_>>());
    assert!(
        nodes_holding_keys(&store).await >= 2,
        "keys spread over the nodes"
    );

    let gets = CoalescedGet::new(&store);
    let keys: Vec<String> = (0..40)
        .map(|i| cache.key("fake-embed", &texts[i]))
        .collect();
    let answers = futures_util::future::join_all(keys.iter().map(|k| gets.get(k.clone()))).await;
    assert!(answers.iter().all(|a| matches!(a, Ok(Some(_)))));

    // The GCRA script on the node owning the subject's key.
    let limiter = RateLimiter::new(store.clone());
    let limit = RateLimit {
        limit: 5,
        period: Duration::from_secs(60),
    };
    let decisions =
        futures_util::future::join_all((0..20).map(|_| limiter.check("u", limit))).await;
    let admitted = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(admitted, 5);

    // Sessions and their per-user list live on different nodes.
    let sessions = SessionStore::new(store.clone(), Duration::from_secs(900));
    let a = sessions
        .create("patient-fake-9", serde_json::json!({}))
        .await
        .unwrap();
    let b = sessions
        .create("patient-fake-9", serde_json::json!({}))
        .await
        .unwrap();
    assert!(sessions.validate(&a.id).await.unwrap().is_some());
    assert_eq!(
        sessions.logout_everywhere("patient-fake-9").await.unwrap(),
        2
    );
    assert!(sessions.validate(&b.id).await.unwrap().is_none());

    // Counter buckets of one series share a hash tag, so window reads are one command.
    let counters = Counters::new(
        store.clone(),
        Duration::from_secs(60),
        Duration::from_secs(3600),
    )
    .unwrap();
    let now = Utc::now();
    counters
        .incr("logins", 2, now - chrono::Duration::minutes(2))
        .await
        .unwrap();
    counters.incr("logins", 3, now).await.unwrap();
    assert_eq!(
        counters
            .sum("logins", Duration::from_secs(300), now)
            .await
            .unwrap(),
        5
    );
    common::cleanup(&store).await;
    assert_eq!(
        nodes_holding_keys(&store).await,
        0,
        "cleanup reached every node"
    );
}
