//! udl's configuration ([`udl_config`]), read with the sections of every store this build
//! has: `udl::config::load(path)` is what a service calls at start.

use std::path::Path;

pub use udl_config::*;
#[cfg(feature = "mongo")]
pub use udl_mongo::MongoConfig;
#[cfg(feature = "postgres")]
pub use udl_postgres::PostgresConfig;
#[cfg(feature = "redis")]
pub use udl_redis::RedisConfig;
#[cfg(feature = "scylla")]
pub use udl_scylla::{Replication, ScyllaConfig};

/// How the section of every store compiled into this build is read.
pub fn store_readers() -> Vec<StoreReader> {
    crate::backends::registrations()
        .iter()
        .map(|r| r.reader)
        .collect()
}

/// Loads from the optional TOML file at `path` and this process's environment.
pub fn load(path: Option<&Path>) -> Result<UdlConfig, ConfigError> {
    UdlConfig::load(&store_readers(), path)
}

/// Loads from `file` (name, TOML text) and the given environment variables.
pub fn from_sources(
    file: Option<(&str, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<UdlConfig, ConfigError> {
    UdlConfig::from_sources(&store_readers(), file, env)
}

#[cfg(all(
    test,
    feature = "postgres",
    feature = "mongo",
    feature = "redis",
    feature = "scylla"
))]
mod tests;
