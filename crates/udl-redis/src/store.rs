//! The Redis store: a self-reconnecting connection (single server or cluster), TLS, the key
//! prefix, health.

use std::time::{Duration, Instant};

use crate::config::RedisConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{Client, TlsCertificates};
use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::connection::RedisConnection;
use crate::error::classify;

/// A connected Redis store.
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    connection: RedisConnection,
    prefix: String,
    meter: udl_metrics::StoreMeter,
}

fn unavailable(message: &'static str) -> Error {
    Error::new(ErrorKind::Unavailable, message)
        .with_store(StoreKind::REDIS)
        .with_operation("connect")
}

impl RedisStore {
    /// Connects as configured: to one server, or with `cluster` to a Redis Cluster through
    /// `url` as its seed node. Commands are multiplexed over one connection (per node) that
    /// reconnects by itself; connecting is bounded by `pool.connect_timeout` and each
    /// command by `resilience.timeout`. `rediss://` URLs use TLS, verified against the system roots or `tls_ca_cert`.
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        let certificates = match &config.tls_ca_cert {
            Some(path) => Some(TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(path).map_err(|_| {
                    Error::new(ErrorKind::Config, "redis.tls_ca_cert cannot be read")
                        .with_store(StoreKind::REDIS)
                        .with_operation("connect")
                })?),
            }),
            None => None,
        };
        let url = config.url.expose();
        let client = match &certificates {
            Some(certs) => Client::build_with_tls(url, certs.clone()),
            None => Client::open(url),
        }
        .map_err(|e| classify(&e, "connect"))?;
        let (timeout, response_timeout) = (config.pool.connect_timeout, config.resilience.timeout);
        let connect = async {
            if config.cluster {
                let mut builder = ClusterClientBuilder::new([url])
                    .connection_timeout(timeout)
                    .response_timeout(response_timeout)
                    .retries(1);
                if let Some(certs) = certificates {
                    builder = builder.certs(certs);
                }
                let cluster = builder.build()?;
                Ok(RedisConnection::cluster(
                    cluster.get_async_connection().await?,
                ))
            } else {
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1);
                let manager = ConnectionManager::new_with_config(client.clone(), manager_config);
                Ok(RedisConnection::single(manager.await?))
            }
        };
        let connection = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| unavailable("Redis did not answer within the connect timeout"))?
            .map_err(|e: redis::RedisError| classify(&e, "connect"))?;
        Ok(RedisStore {
            client,
            connection,
            prefix: config.key_prefix.clone(),
            meter: udl_metrics::StoreMeter::new(StoreKind::REDIS),
        })
    }

    /// The same store, its structures' calls measured in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<udl_metrics::Metrics>) -> Self {
        self.meter = self.meter.reporting_to(metrics);
        self
    }

    /// Measures the calls of the structures built on this store.
    pub fn meter(&self) -> &udl_metrics::StoreMeter {
        &self.meter
    }

    /// A clone of the connection, for commands the typed helpers do not cover.
    pub fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }

    /// A dedicated publish/subscribe connection (in a cluster, to the seed node: classic
    /// pub/sub messages reach every node).
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub> {
        self.client
            .get_async_pubsub()
            .await
            .map_err(|e| classify(&e, "subscribe"))
    }

    /// `prefix` + `suffix`: every key udl writes.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// `prefix` + `namespace` + the hex of `digest`: keys derived from values (ids, texts)
    /// that must not be readable in Redis. Built in one allocation: it is on every cache hit.
    pub fn digest_key(&self, namespace: &str, digest: &[u8; 32]) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        let mut key = String::with_capacity(self.prefix.len() + namespace.len() + hex.len());
        key.push_str(&self.prefix);
        key.push_str(namespace);
        key.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
        key
    }

    /// `PING` with a unique token, which must come back unchanged, within `timeout`.
    pub async fn health(&self, timeout: Duration) -> Result<Duration> {
        let token = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut conn = self.connection();
        let mut command = redis::cmd("PING");
        command.arg(&token);
        let ping = command.query_async::<String>(&mut conn);
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(echo)) if echo == token => Ok(started.elapsed()),
            Ok(Ok(_)) => Err(
                Error::new(ErrorKind::Internal, "PING answered with another token")
                    .with_store(StoreKind::REDIS)
                    .with_operation("health"),
            ),
            Ok(Err(e)) => Err(classify(&e, "health")),
            Err(_) => Err(Error::new(ErrorKind::Timeout, "health check timed out")
                .with_store(StoreKind::REDIS)
                .with_operation("health")),
        }
    }
}
