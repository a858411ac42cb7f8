//! `[serve]`: the `udl serve` daemon.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;

/// `[serve]`: where `udl serve` listens and how it checks and stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// Listen address (`serve.addr`, env `UDL__SERVE__ADDR`); default 127.0.0.1:8080.
    pub addr: SocketAddr,
    /// Bound on each store's round trip during `/health/ready`; default 2 s.
    pub health_timeout: Duration,
    /// Longest a SIGTERM waits for in-flight requests and spool flushes; default 30 s.
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            health_timeout: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl ServeConfig {
    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Self {
        let defaults = ServeConfig::default();
        let addr = match s.string("addr", problems) {
            None => defaults.addr,
            Some(text) => text.parse().unwrap_or_else(|_| {
                problems.push(Problem {
                    key: "serve.addr".into(),
                    problem: "must be an IP address and port, such as 127.0.0.1:8080".into(),
                });
                defaults.addr
            }),
        };
        let config = ServeConfig {
            addr,
            health_timeout: s
                .duration("health_timeout", problems)
                .unwrap_or(defaults.health_timeout),
            shutdown_grace: s
                .duration("shutdown_grace", problems)
                .unwrap_or(defaults.shutdown_grace),
        };
        s.finish(problems);
        config
    }
}

impl fmt::Display for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[serve]")?;
        writeln!(f, "addr = \"{}\"", self.addr)?;
        writeln!(
            f,
            "health_timeout = \"{}\"",
            humantime::format_duration(self.health_timeout)
        )?;
        writeln!(
            f,
            "shutdown_grace = \"{}\"",
            humantime::format_duration(self.shutdown_grace)
        )
    }
}
