//! udl configuration, layered: defaults, then an optional TOML file, then environment
//! variables (`UDL__POSTGRES__URL`, `UDL__POSTGRES__POOL__MAX`, ...). Any secret may instead
//! come from a file named by its `*_file` key (`UDL__POSTGRES__URL_FILE=/run/secrets/pg`).
//!
//! Everything is validated at load and every problem is reported, one line each, naming
//! the key and never the secret. `Debug` and `Display` redact credentials.

mod layers;
mod pool;
mod privacy;
mod problem;
mod reader;
mod resilience;
mod secret;
mod security;
mod serve;
mod stores;

use std::fmt;
use std::path::Path;

pub use layers::ENV_PREFIX;
pub use pool::{PoolConfig, MAX_POOL_SIZE};
pub use privacy::PrivacyConfig;
pub use problem::{ConfigError, Problem};
pub use resilience::ResilienceSettings;
pub use secret::{Secret, SecretUrl};
pub use security::SecurityConfig;
pub use serve::ServeConfig;
pub use stores::{MongoConfig, PostgresConfig, RedisConfig, Replication, ScyllaConfig};

/// The whole configuration. A store is configured when its section is present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdlConfig {
    /// `[postgres]`.
    pub postgres: Option<PostgresConfig>,
    /// `[mongo]`.
    pub mongo: Option<MongoConfig>,
    /// `[redis]`.
    pub redis: Option<RedisConfig>,
    /// `[scylla]`.
    pub scylla: Option<ScyllaConfig>,
    /// `[serve]` (defaults when absent).
    pub serve: ServeConfig,
    /// `[security]` (defaults when absent).
    pub security: SecurityConfig,
    /// `[privacy]`: field encryption and the other HIPAA layers.
    pub privacy: Option<PrivacyConfig>,
}

impl UdlConfig {
    /// Loads from the optional TOML file at `path` and this process's environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match path {
            None => None,
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => Some((p.display().to_string(), text)),
                Err(e) => {
                    return Err(ConfigError {
                        problems: vec![Problem {
                            key: p.display().to_string(),
                            problem: format!("cannot read config file: {}", e.kind()),
                        }],
                    })
                }
            },
        };
        let file = text.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
        Self::from_sources(file, std::env::vars())
    }

    /// Loads from `file` (name, TOML text) and the given environment variables.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut tree = match file {
            Some((name, text)) => layers::parse_file(name, text).unwrap_or_else(|p| {
                problems.push(p);
                toml::Table::new()
            }),
            None => toml::Table::new(),
        };
        layers::overlay_env(&mut tree, env, &mut problems);

        let mut root = reader::Section::new("", &tree);
        let mut config = UdlConfig::default();
        if let Some(s) = root.section("postgres", &mut problems) {
            config.postgres = PostgresConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("mongo", &mut problems) {
            config.mongo = MongoConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("redis", &mut problems) {
            config.redis = RedisConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("scylla", &mut problems) {
            config.scylla = ScyllaConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("serve", &mut problems) {
            config.serve = ServeConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("security", &mut problems) {
            config.security = SecurityConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("privacy", &mut problems) {
            config.privacy = PrivacyConfig::read(s, &mut problems);
            if config.postgres.is_none() {
                problems.push(Problem {
                    key: "privacy".into(),
                    problem: "needs [postgres]: data keys and the audit log live there".into(),
                });
            }
        }
        root.finish(&mut problems);
        security::check_transport(&config, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// The effective configuration as TOML, secrets redacted.
impl fmt::Display for UdlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stores: [Option<&dyn fmt::Display>; 4] = [
            self.postgres.as_ref().map(|c| c as &dyn fmt::Display),
            self.mongo.as_ref().map(|c| c as &dyn fmt::Display),
            self.redis.as_ref().map(|c| c as &dyn fmt::Display),
            self.scylla.as_ref().map(|c| c as &dyn fmt::Display),
        ];
        let mut none = true;
        for s in stores.into_iter().flatten() {
            none = false;
            writeln!(f, "{s}")?;
        }
        if none {
            writeln!(f, "# no store configured\n")?;
        }
        writeln!(f, "{}", self.serve)?;
        write!(f, "{}", self.security)?;
        match &self.privacy {
            Some(privacy) => write!(f, "\n{privacy}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
