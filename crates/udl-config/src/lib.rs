//! udl configuration, layered: defaults, then an optional TOML file, then environment
//! variables (`UDL__POSTGRES__URL`, `UDL__POSTGRES__POOL__MAX`, ...). Any secret may instead
//! come from a file named by its `*_file` key (`UDL__POSTGRES__URL_FILE=/run/secrets/pg`).
//!
//! Everything is validated at load and every problem is reported, one line each, naming
//! the key and never the secret. `Debug` and `Display` redact credentials.

mod cdc;
mod gateway;
mod jobs;
mod layers;
mod nats;
mod pool;
mod privacy;
mod problem;
mod reader;
mod resilience;
mod retention;
mod secret;
mod security;
mod serve;
mod store_helpers;
mod store_section;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use cdc::CdcConfig;
pub use gateway::{GatewayConfig, GatewayTls, JwtConfig, ServiceAccess, GATEWAY_OPERATIONS};
pub use jobs::{JobSchedule, JobsConfig, KNOWN_JOBS};
pub use layers::ENV_PREFIX;
pub use nats::NatsConfig;
pub use pool::{PoolConfig, MAX_POOL_SIZE};
pub use privacy::PrivacyConfig;
pub use problem::{ConfigError, Problem};
pub use reader::Section;
pub use resilience::ResilienceSettings;
pub use retention::{RetentionConfig, SIX_YEARS, THIRTEEN_MONTHS};
pub use secret::{Secret, SecretUrl};
pub use security::SecurityConfig;
pub use serve::ServeConfig;
pub use store_helpers::{ca_cert, identifier, pool_sections};
pub use store_section::{AnyStoreConfig, StoreConfig, StoreReader};

/// The whole configuration. A store is configured when its section is present; each store's
/// section is defined by its backend ([`StoreConfig`]) and read by [`UdlConfig::store`].
#[derive(Clone, Debug, Default)]
pub struct UdlConfig {
    /// The configured stores' sections, in the order their readers were given.
    stores: Vec<Arc<dyn AnyStoreConfig>>,
    /// `[serve]` (defaults when absent).
    pub serve: ServeConfig,
    /// `[security]` (defaults when absent).
    pub security: SecurityConfig,
    /// `[privacy]`: field encryption and the other HIPAA layers.
    pub privacy: Option<PrivacyConfig>,
    /// `[cdc]`: change data capture, run by `udl serve` when present.
    pub cdc: Option<CdcConfig>,
    /// `[nats]`: the event bus the change relay publishes to.
    pub nats: Option<NatsConfig>,
    /// `[gateway]`: the HTTP/JSON API `udl serve` offers other services.
    pub gateway: Option<GatewayConfig>,
    /// `[retention]`: how long each data class is kept (defaults when absent).
    pub retention: RetentionConfig,
    /// `[jobs]`: the scheduler and each job's schedule (defaults when absent).
    pub jobs: JobsConfig,
}

impl PartialEq for UdlConfig {
    fn eq(&self, other: &Self) -> bool {
        self.stores.len() == other.stores.len()
            && self
                .stores
                .iter()
                .zip(&other.stores)
                .all(|(a, b)| a.same_as(b.as_ref()))
            && (&self.serve, &self.security, &self.privacy)
                == (&other.serve, &other.security, &other.privacy)
            && (&self.cdc, &self.nats) == (&other.cdc, &other.nats)
            && self.gateway == other.gateway
            && (&self.retention, &self.jobs) == (&other.retention, &other.jobs)
    }
}

impl UdlConfig {
    /// The section of store `S`, when it is configured.
    pub fn store<S: StoreConfig>(&self) -> Option<&S> {
        self.stores.iter().find_map(|s| s.as_any().downcast_ref())
    }

    /// Whether the store whose section is called `section` is configured.
    pub fn has_store(&self, section: &str) -> bool {
        self.stores.iter().any(|s| s.section() == section)
    }

    /// Every configured store's section.
    pub fn stores(&self) -> impl Iterator<Item = &dyn AnyStoreConfig> {
        self.stores.iter().map(|s| s.as_ref())
    }

    /// Loads from the optional TOML file at `path` and this process's environment, reading
    /// the store sections `stores` knows (any other section is an unknown key).
    pub fn load(stores: &[StoreReader], path: Option<&Path>) -> Result<Self, ConfigError> {
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
        Self::from_sources(stores, file, std::env::vars())
    }

    /// Loads from `file` (name, TOML text) and the given environment variables, reading the
    /// store sections `stores` knows.
    pub fn from_sources(
        stores: &[StoreReader],
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
        for reader in stores {
            if let Some(s) = root.section(reader.section, &mut problems) {
                config.stores.extend((reader.read)(s, &mut problems));
            }
        }
        if let Some(s) = root.section("serve", &mut problems) {
            config.serve = ServeConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("security", &mut problems) {
            config.security = SecurityConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("privacy", &mut problems) {
            config.privacy = PrivacyConfig::read(s, &mut problems);
            if !config.has_store("postgres") {
                problems.push(Problem {
                    key: "privacy".into(),
                    problem: "needs [postgres]: data keys and the audit log live there".into(),
                });
            }
        }
        if let Some(s) = root.section("cdc", &mut problems) {
            config.cdc = Some(CdcConfig::read(s, &mut problems));
            if config.privacy.is_none() {
                problems.push(Problem {
                    key: "cdc".into(),
                    problem: "needs [privacy]: tokens and the redaction ledger use its keys".into(),
                });
            }
        }
        if let Some(s) = root.section("nats", &mut problems) {
            config.nats = NatsConfig::read(s, &mut problems);
        }
        if let Some(s) = root.section("gateway", &mut problems) {
            config.gateway = GatewayConfig::read(s, &mut problems);
            if config.privacy.is_none() {
                problems.push(Problem {
                    key: "gateway".into(),
                    problem: "needs [privacy]: every PII and PHI access through it is audited"
                        .into(),
                });
            }
            if !config.has_store("redis") {
                problems.push(Problem {
                    key: "gateway".into(),
                    problem: "needs [redis]: the JWT revocation list and rate limits live there"
                        .into(),
                });
            }
        }
        if let Some(s) = root.section("retention", &mut problems) {
            config.retention = RetentionConfig::read(s, &mut problems);
        }
        if let Some(gateway) = &mut config.gateway {
            gateway.session_idle = config.retention.sessions;
        }
        if let Some(s) = root.section("jobs", &mut problems) {
            config.jobs = JobsConfig::read(s, &mut problems);
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
        for store in &self.stores {
            writeln!(f, "{store}")?;
        }
        if self.stores.is_empty() {
            writeln!(f, "# no store configured\n")?;
        }
        writeln!(f, "{}", self.serve)?;
        write!(f, "{}", self.security)?;
        if let Some(privacy) = &self.privacy {
            write!(f, "\n{privacy}")?;
        }
        if let Some(cdc) = &self.cdc {
            write!(f, "\n{cdc}")?;
        }
        if let Some(nats) = &self.nats {
            write!(f, "\n{nats}")?;
        }
        if let Some(gateway) = &self.gateway {
            write!(f, "\n{gateway}")?;
        }
        write!(f, "\n{}\n{}", self.retention, self.jobs)
    }
}
