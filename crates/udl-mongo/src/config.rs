//! `[mongo]`: the store's config section, read by udl-config's layered loader.

use std::fmt;
use std::path::PathBuf;

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
    /// Where vector indexes are saved so a restart opens them instead of building them
    /// (absolute; used on servers with change streams). Holds the vectors as MongoDB does.
    pub vector_index_dir: Option<PathBuf>,
    /// Up to this many vectors an index is a quantized scan, above it an HNSW graph
    /// (default [`crate::SCAN_LIMIT`]; 0 makes every index a graph).
    pub vector_scan_limit: usize,
    /// Saves indexes of PII or PHI vector fields too (`vector_index_save_phi_in_clear`): the
    /// save holds the vectors unencrypted, so by default those indexes are built at each start.
    pub vector_index_save_phi_in_clear: bool,
}

impl StoreConfig for MongoConfig {
    const SECTION: &'static str = "mongo";

    fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["mongodb", "mongodb+srv"], problems);
        let database = identifier(&mut s, "database", "udl", problems);
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(10, 50), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        let vector_index_dir = s.string("vector_index_dir", problems).map(PathBuf::from);
        if vector_index_dir.as_ref().is_some_and(|d| d.is_relative()) {
            problems.push(Problem {
                key: "mongo.vector_index_dir".into(),
                problem: "must be an absolute path".into(),
            });
        }
        let vector_scan_limit = s
            .int("vector_scan_limit", 0, 100_000_000, problems)
            .map_or(crate::SCAN_LIMIT, |n| n as usize);
        let vector_index_save_phi_in_clear = s
            .bool("vector_index_save_phi_in_clear", problems)
            .unwrap_or(false);
        s.finish(problems);
        Some(MongoConfig {
            url: url?,
            database,
            pool,
            resilience,
            vector_index_dir,
            vector_scan_limit,
            vector_index_save_phi_in_clear,
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
        if let Some(dir) = &self.vector_index_dir {
            writeln!(f, "vector_index_dir = \"{}\"", dir.display())?;
        }
        writeln!(f, "vector_scan_limit = {}", self.vector_scan_limit)?;
        if self.vector_index_save_phi_in_clear {
            writeln!(f, "vector_index_save_phi_in_clear = true")?;
        }
        pool_sections(f, "mongo", &self.pool, &self.resilience)
    }
}
