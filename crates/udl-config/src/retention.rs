//! `[retention]`: how long each data class is kept, declared once here. Each class compiles to
//! its store's own mechanism: PostgreSQL month partitions detached and dropped once wholly
//! expired (access log, change history, redaction ledger), MongoDB TTL indexes (interaction
//! logs), ScyllaDB per-write TTLs (analytics, chat archive), Redis `EXPIRE` (sessions); reads
//! leave out what is past it.

use std::fmt;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;

/// Six years of 365.25 days: HIPAA's retention of documentation, the shortest the PHI access
/// log may be kept.
pub const SIX_YEARS: Duration = Duration::from_secs(6 * 31_557_600);

/// Thirteen months (396 days): the analytics retention of the brief.
pub const THIRTEEN_MONTHS: Duration = Duration::from_secs(396 * 86_400);

/// The longest TTL ScyllaDB (CQL) takes: 20 years.
const MAX_CQL_TTL: Duration = Duration::from_secs(630_720_000);

/// `[retention]`: time kept per data class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// The PHI access log (`retention.phi_access_log`); default and minimum 6 years.
    pub phi_access_log: Duration,
    /// The PHI change history (`retention.phi_change_history`); default 6 years.
    pub phi_change_history: Duration,
    /// The redaction ledger of change events (`retention.redaction_ledger`); default 6 years.
    pub redaction_ledger: Duration,
    /// Patients' interaction logs in MongoDB, from their `occurred_at`
    /// (`retention.interaction_logs`, a TTL index); default 6 years.
    pub interaction_logs: Duration,
    /// Analytics rows in ScyllaDB: metrics, usage and log events, change events
    /// (`retention.analytics`, a per-write TTL); default 13 months, at most 20 years.
    pub analytics: Duration,
    /// Archived chat messages in ScyllaDB (`retention.chat_archive`, a per-write TTL); unset
    /// keeps them until deleted; at most 20 years.
    pub chat_archive: Option<Duration>,
    /// Sessions in Redis: how long one lives unused (`retention.sessions`, its `EXPIRE`,
    /// renewed on use); default 30 min.
    pub sessions: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            phi_access_log: SIX_YEARS,
            phi_change_history: SIX_YEARS,
            redaction_ledger: SIX_YEARS,
            interaction_logs: SIX_YEARS,
            analytics: THIRTEEN_MONTHS,
            chat_archive: None,
            sessions: Duration::from_secs(30 * 60),
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
        let mut at_least_a_day = |key: &'static str, default: Duration| {
            let keep = s.duration(key, problems).unwrap_or(default);
            if keep < Duration::from_secs(86_400) {
                problems.push(Problem {
                    key: format!("retention.{key}"),
                    problem: "must be at least one day".into(),
                });
            }
            keep
        };
        let phi_change_history = at_least_a_day("phi_change_history", defaults.phi_change_history);
        let redaction_ledger = at_least_a_day("redaction_ledger", defaults.redaction_ledger);
        let interaction_logs = at_least_a_day("interaction_logs", defaults.interaction_logs);
        let analytics = s
            .duration("analytics", problems)
            .unwrap_or(defaults.analytics);
        let chat_archive = s.duration("chat_archive", problems);
        let sessions = s
            .duration("sessions", problems)
            .unwrap_or(defaults.sessions);
        for (key, keep) in [
            ("analytics", Some(analytics)),
            ("chat_archive", chat_archive),
        ] {
            if keep.is_some_and(|k| k > MAX_CQL_TTL || k.subsec_nanos() != 0) {
                problems.push(Problem {
                    key: format!("retention.{key}"),
                    problem: "must be whole seconds, at most 20 years (a ScyllaDB TTL)".into(),
                });
            }
        }
        s.finish(problems);
        RetentionConfig {
            phi_access_log,
            phi_change_history,
            redaction_ledger,
            interaction_logs,
            analytics,
            chat_archive,
            sessions,
        }
    }
}

impl fmt::Display for RetentionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[retention]")?;
        let kept = [
            ("phi_access_log", Some(self.phi_access_log)),
            ("phi_change_history", Some(self.phi_change_history)),
            ("redaction_ledger", Some(self.redaction_ledger)),
            ("interaction_logs", Some(self.interaction_logs)),
            ("analytics", Some(self.analytics)),
            ("chat_archive", self.chat_archive),
            ("sessions", Some(self.sessions)),
        ];
        for (key, keep) in kept {
            match keep {
                Some(keep) => writeln!(f, "{key} = \"{}\"", humantime::format_duration(keep))?,
                None => writeln!(f, "# {key}: kept until deleted")?,
            }
        }
        Ok(())
    }
}
