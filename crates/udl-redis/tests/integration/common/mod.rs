//! Redis test helpers: a fresh key prefix per test on the shared server, cleanup, and a
//! private server a test may take away.

use udl_config::StoreConfig as _;
use udl_redis::RedisConfig;
use udl_redis::RedisStore;
use udl_testkit::servers;

pub fn config(url: &str, prefix: &str) -> RedisConfig {
    let vars = [
        ("UDL__REDIS__URL", url.to_owned()),
        ("UDL__REDIS__KEY_PREFIX", prefix.to_owned()),
        ("UDL__REDIS__POOL__ACQUIRE_TIMEOUT", "1s".to_owned()),
    ];
    RedisConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid")
}

/// A store on the shared local server with a fresh key prefix.
pub async fn store() -> RedisStore {
    let prefix = format!("{}:", servers::unique_namespace("t"));
    match RedisStore::connect(&config(&servers::redis_url(), &prefix)).await {
        Ok(s) => s,
        Err(e) => servers::unreachable("Redis", &servers::redis_url(), &e),
    }
}

/// Deletes every key under the store's prefix.
pub async fn cleanup(store: &RedisStore) {
    let mut conn = store.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(store.key("*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
}

#[allow(unused_imports)] // only the outage tests take a private server
pub use udl_testkit::private_redis::PrivateRedis;
