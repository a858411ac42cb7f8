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
    for (key, how) in config.stores().filter_map(|s| s.plaintext()) {
        problems.push(Problem {
            key: key.into(),
            problem: format!("security.require_tls refuses a plaintext connection; {how}"),
        })
    }
    if config
        .nats
        .as_ref()
        .is_some_and(|n| n.url.expose_url().scheme() != "tls")
    {
        problems.push(Problem {
            key: "nats.url".into(),
            problem: "security.require_tls refuses a plaintext connection; use a tls:// URL".into(),
        })
    }
}

impl fmt::Display for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[security]")?;
        writeln!(f, "environment = \"{}\"", self.environment)?;
        writeln!(f, "require_tls = {}", self.require_tls)
    }
}
