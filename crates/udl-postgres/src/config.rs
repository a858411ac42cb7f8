//! `[postgres]`: the store's config section, read by udl-config's layered loader.

use std::fmt;
use std::time::Duration;

use udl_config::{
    identifier, pool_sections, PoolConfig, Problem, ResilienceSettings, SecretUrl, Section,
    StoreConfig,
};

/// `[postgres]`: the source of truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://` or `postgresql://` URL; `sslmode=require` (or stricter) turns on TLS.
    pub url: SecretUrl,
    /// Schema holding udl's tables (`search_path` of every connection).
    pub schema: String,
    /// Server-side limit for one statement.
    pub statement_timeout: Duration,
    /// Pool, default 5–20 connections.
    pub pool: PoolConfig,
    /// Timeout, concurrency limit, retries and breaker of the resilience layer.
    pub resilience: ResilienceSettings,
}

impl StoreConfig for PostgresConfig {
    const SECTION: &'static str = "postgres";

    fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["postgres", "postgresql"], problems);
        let schema = identifier(&mut s, "schema", "public", problems);
        let statement_timeout = s
            .duration("statement_timeout", problems)
            .unwrap_or(Duration::from_secs(30));
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(5, 20), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        s.finish(problems);
        Some(PostgresConfig {
            url: url?,
            schema,
            statement_timeout,
            pool,
            resilience,
        })
    }

    fn resilience(&self) -> &ResilienceSettings {
        &self.resilience
    }

    fn plaintext(&self) -> Option<(&'static str, &'static str)> {
        let encrypted = self.url.expose_url().query_pairs().any(|(k, v)| {
            k == "sslmode" && ["require", "verify-ca", "verify-full"].contains(&v.as_ref())
        });
        (!encrypted).then_some(("postgres.url", "add sslmode=require (or verify-full)"))
    }
}

impl fmt::Display for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[postgres]\nurl = \"{}\"\nschema = \"{}\"",
            self.url, self.schema
        )?;
        writeln!(
            f,
            "statement_timeout = \"{}\"",
            humantime::format_duration(self.statement_timeout)
        )?;
        pool_sections(f, "postgres", &self.pool, &self.resilience)
    }
}
