//! `[retention]`: how long each data class is kept. Each class compiles to its store's own
//! mechanism (for PostgreSQL, month partitions detached and dropped once wholly expired) and
//! reads leave out what is past it.

use std::fmt;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;

/// Six years of 365.25 days: HIPAA's retention of documentation, the shortest the PHI access
/// log may be kept.
pub const SIX_YEARS: Duration = Duration::from_secs(6 * 31_557_600);

/// `[retention]`: time kept per data class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// The PHI access log (`retention.phi_access_log`); default and minimum 6 years.
    pub phi_access_log: Duration,
    /// The PHI change history (`retention.phi_change_history`); default 6 years.
    pub phi_change_history: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            phi_access_log: SIX_YEARS,
            phi_change_history: SIX_YEARS,
        }
    }
}

impl RetentionConfig {
    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Self {
        let defaults = RetentionConfig::default();
        let phi_access_log = s
            .duration("phi_access_log", problems)
            .unwrap_or(defaults.phi_access_log);
        if phi_access_log < SIX_YEARS {
            problems.push(Problem {
                key: "retention.phi_access_log".into(),
                problem: "must be at least 6 years (HIPAA keeps access documentation 6 years)"
                    .into(),
            });
        }
        let phi_change_history = s
            .duration("phi_change_history", problems)
            .unwrap_or(defaults.phi_change_history);
        if phi_change_history < Duration::from_secs(86_400) {
            problems.push(Problem {
                key: "retention.phi_change_history".into(),
                problem: "must be at least one day".into(),
            });
        }
        s.finish(problems);
        RetentionConfig {
            phi_access_log,
            phi_change_history,
        }
    }
}

impl fmt::Display for RetentionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[retention]")?;
        for (key, keep) in [
            ("phi_access_log", self.phi_access_log),
            ("phi_change_history", self.phi_change_history),
        ] {
            writeln!(f, "{key} = \"{}\"", humantime::format_duration(keep))?;
        }
        Ok(())
    }
}
