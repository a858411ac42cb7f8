//! Redis test helpers: a fresh key prefix per test on the shared server, cleanup, and a
//! private server a test may take away.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use udl_config::{RedisConfig, UdlConfig};
use udl_redis::RedisStore;
use udl_testkit::servers;

pub fn config(url: &str, prefix: &str) -> RedisConfig {
    let vars = [
        ("UDL__REDIS__URL", url.to_owned()),
        ("UDL__REDIS__KEY_PREFIX", prefix.to_owned()),
        ("UDL__REDIS__POOL__ACQUIRE_TIMEOUT", "1s".to_owned()),
    ];
    UdlConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .expect("test config is valid")
        .redis
        .expect("redis section present")
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

/// A private redis-server on a free port, so a test can take it away.
pub struct PrivateRedis {
    pub child: Child,
    pub url: String,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/services up");
        // Owned at once, so Drop kills and reaps it whatever happens next.
        let server = PrivateRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        let client = redis::Client::open(server.url.as_str()).unwrap();
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
                {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
