//! `[redis]`: the store's config section, read by udl-config's layered loader.

use std::fmt;

use udl_config::{
    ca_cert, pool_sections, PoolConfig, Problem, ResilienceSettings, SecretUrl, Section,
    StoreConfig,
};

/// `[redis]`: caches, sessions, rate limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` URL.
    pub url: SecretUrl,
    /// Prefix of every key udl writes.
    pub key_prefix: String,
    /// Whether `url` is a seed node of a Redis Cluster (the cluster client then finds the
    /// other nodes and follows slot moves).
    pub cluster: bool,
    /// PEM file of the certificate authority that signed the server's certificate, for
    /// `rediss://` servers whose certificate the system roots do not cover.
    pub tls_ca_cert: Option<std::path::PathBuf>,
    /// Pool, default 5–25 connections.
    pub pool: PoolConfig,
    /// Timeout, concurrency limit, retries and breaker of the resilience layer.
    pub resilience: ResilienceSettings,
}

impl StoreConfig for RedisConfig {
    const SECTION: &'static str = "redis";

    fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["redis", "rediss"], problems);
        let key_prefix = s
            .string("key_prefix", problems)
            .unwrap_or_else(|| "udl:".into());
        let cluster = s.bool("cluster", problems).unwrap_or(false);
        let tls_ca_cert = ca_cert(&mut s, problems);
        let plaintext_url = url
            .as_ref()
            .is_some_and(|u| !u.expose().starts_with("rediss://"));
        if tls_ca_cert.is_some() && plaintext_url {
            problems.push(Problem {
                key: format!("{}.tls_ca_cert", s.path()),
                problem: "needs a rediss:// url (TLS)".into(),
            });
        }
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(5, 25), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        s.finish(problems);
        Some(RedisConfig {
            url: url?,
            key_prefix,
            cluster,
            tls_ca_cert,
            pool,
            resilience,
        })
    }

    fn resilience(&self) -> &ResilienceSettings {
        &self.resilience
    }

    fn plaintext(&self) -> Option<(&'static str, &'static str)> {
        (self.url.expose_url().scheme() != "rediss").then_some(("redis.url", "use a rediss:// URL"))
    }
}

impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\ncluster = {}",
            self.url, self.key_prefix, self.cluster
        )?;
        if let Some(ca) = &self.tls_ca_cert {
            writeln!(f, "tls_ca_cert = {:?}", ca.display().to_string())?;
        }
        pool_sections(f, "redis", &self.pool, &self.resilience)
    }
}
