//! `[security]`: transmission security. With `require_tls`, a store whose connection would be
//! plaintext is refused when the configuration loads, naming the store, so udl never starts
//! talking to it in the clear. It is on by default unless `environment = "development"`.

use std::fmt;

use crate::problem::Problem;
use crate::reader::Section;
use crate::UdlConfig;

/// `[security]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `development` or `production` (default `development`, for local servers).
    pub environment: String,
    /// Refuse plaintext connections to every store; default: on outside development.
    pub require_tls: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            environment: "development".into(),
            require_tls: false,
        }
    }
}

impl SecurityConfig {
    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Self {
        let environment = s
            .string("environment", problems)
            .unwrap_or_else(|| "development".into());
        if !["development", "production"].contains(&environment.as_str()) {
            problems.push(Problem {
                key: "security.environment".into(),
                problem: "must be \"development\" or \"production\"".into(),
            });
        }
        let require_tls = s
            .bool("require_tls", problems)
            .unwrap_or(environment != "development");
        s.finish(problems);
        SecurityConfig {
            environment,
            require_tls,
        }
    }
}

/// With `require_tls`, one problem per store whose connection would be plaintext.
pub(crate) fn check_transport(config: &UdlConfig, problems: &mut Vec<Problem>) {
    if !config.security.require_tls {
        return;
    }
    let mut refuse = |key: &str, how: &str| {
        problems.push(Problem {
            key: key.into(),
            problem: format!("security.require_tls refuses a plaintext connection; {how}"),
        })
    };
    if let Some(pg) = &config.postgres {
        let encrypted = pg.url.expose_url().query_pairs().any(|(k, v)| {
            k == "sslmode" && ["require", "verify-ca", "verify-full"].contains(&v.as_ref())
        });
        if !encrypted {
            refuse("postgres.url", "add sslmode=require (or verify-full)");
        }
    }
    if let Some(mongo) = &config.mongo {
        let url = mongo.url.expose_url();
        let encrypted = url.scheme() == "mongodb+srv"
            || url
                .query_pairs()
                .any(|(k, v)| (k == "tls" || k == "ssl") && v == "true");
        if !encrypted {
            refuse("mongo.url", "add tls=true");
        }
    }
    if let Some(redis) = &config.redis {
        if redis.url.expose_url().scheme() != "rediss" {
            refuse("redis.url", "use a rediss:// URL");
        }
    }
    if config.scylla.as_ref().is_some_and(|s| !s.tls) {
        refuse("scylla.tls", "set scylla.tls = true");
    }
}

impl fmt::Display for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[security]")?;
        writeln!(f, "environment = \"{}\"", self.environment)?;
        writeln!(f, "require_tls = {}", self.require_tls)
    }
}
