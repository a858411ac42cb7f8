//! `[cdc]`: change data capture. Present, every `udl serve` of the deployment runs the change
//! relay (one streams the slot, the others stand by); `udl cdc` commands read it too.

use std::fmt;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;

/// `[cdc]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdcConfig {
    /// Replication slot and publication name; default `udl_<postgres schema>`.
    pub slot: Option<String>,
    /// Most events written to the sinks at once; default 2000.
    pub batch_events: usize,
    /// Longest a committed change waits for its batch to fill; default 20 ms.
    pub batch_delay: Duration,
    /// Between heartbeats into the WAL (an idle slot still advances); default 5 s.
    pub heartbeat: Duration,
    /// After a halt, before the relay looks again; default 30 s.
    pub halt_retry: Duration,
    /// Read models the relay keeps current (see [`PROJECTIONS`]); default none.
    pub projections: Vec<String>,
}

/// The projections udl ships: `user_plans` keeps each user's plan in Redis from
/// `subscriptions`.
pub const PROJECTIONS: [&str; 1] = ["user_plans"];

impl Default for CdcConfig {
    fn default() -> Self {
        CdcConfig {
            slot: None,
            batch_events: 2000,
            batch_delay: Duration::from_millis(20),
            heartbeat: Duration::from_secs(5),
            halt_retry: Duration::from_secs(30),
            projections: Vec::new(),
        }
    }
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl CdcConfig {
    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Self {
        let d = CdcConfig::default();
        let slot = s.string("slot", problems);
        if slot.as_deref().is_some_and(|name| !plain_name(name)) {
            problems.push(Problem {
                key: "cdc.slot".into(),
                problem: "takes lower-case letters, digits and underscores (at most 63)".into(),
            });
        }
        let config = CdcConfig {
            slot,
            batch_events: s
                .int("batch_events", 1, 100_000, problems)
                .map_or(d.batch_events, |n| n as usize),
            batch_delay: s.duration("batch_delay", problems).unwrap_or(d.batch_delay),
            heartbeat: s.duration("heartbeat", problems).unwrap_or(d.heartbeat),
            halt_retry: s.duration("halt_retry", problems).unwrap_or(d.halt_retry),
            projections: s.string_list("projections", problems).unwrap_or_default(),
        };
        for unknown in config
            .projections
            .iter()
            .filter(|p| !PROJECTIONS.contains(&p.as_str()))
        {
            problems.push(Problem {
                key: "cdc.projections".into(),
                problem: format!(
                    "unknown projection {unknown:?}; udl ships {}",
                    PROJECTIONS.join(", ")
                ),
            });
        }
        s.finish(problems);
        config
    }
}

impl fmt::Display for CdcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = humantime::format_duration;
        writeln!(f, "[cdc]")?;
        if let Some(slot) = &self.slot {
            writeln!(f, "slot = \"{slot}\"")?;
        }
        writeln!(f, "batch_events = {}", self.batch_events)?;
        writeln!(f, "batch_delay = \"{}\"", human(self.batch_delay))?;
        writeln!(f, "heartbeat = \"{}\"", human(self.heartbeat))?;
        writeln!(f, "halt_retry = \"{}\"", human(self.halt_retry))?;
        writeln!(f, "projections = {:?}", self.projections)
    }
}
