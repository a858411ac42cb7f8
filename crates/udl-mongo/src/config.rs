//! `[mongo]`: the store's config section, read by udl-config's layered loader.

use std::fmt;

use udl_config::{
    identifier, pool_sections, PoolConfig, Problem, ResilienceSettings, SecretUrl, Section,
    StoreConfig,
};

/// `[mongo]`: documents, conversations, embeddings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MongoConfig {
    /// `mongodb://` or `mongodb+srv://` URL.
    pub url: SecretUrl,
    /// Database name.
    pub database: String,
    /// Pool, default 10–50 connections.
    pub pool: PoolConfig,
    /// Timeout, concurrency limit, retries and breaker of the resilience layer.
    pub resilience: ResilienceSettings,
}

impl StoreConfig for MongoConfig {
    const SECTION: &'static str = "mongo";

    fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["mongodb", "mongodb+srv"], problems);
        let database = identifier(&mut s, "database", "udl", problems);
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(10, 50), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        s.finish(problems);
        Some(MongoConfig {
            url: url?,
            database,
            pool,
            resilience,
        })
    }

    fn resilience(&self) -> &ResilienceSettings {
        &self.resilience
    }

    fn plaintext(&self) -> Option<(&'static str, &'static str)> {
        let url = self.url.expose_url();
        let encrypted = url.scheme() == "mongodb+srv"
            || url
                .query_pairs()
                .any(|(k, v)| (k == "tls" || k == "ssl") && v == "true");
        (!encrypted).then_some(("mongo.url", "add tls=true"))
    }
}

impl fmt::Display for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[mongo]\nurl = \"{}\"\ndatabase = \"{}\"",
            self.url, self.database
        )?;
        pool_sections(f, "mongo", &self.pool, &self.resilience)
    }
}
