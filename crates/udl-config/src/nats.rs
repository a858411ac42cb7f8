//! `[nats]`: the event bus. With `[cdc]`, the change relay publishes every sanitized `ce.*`
//! event to a NATS JetStream stream (created by udl), besides ScyllaDB.

use std::fmt;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;
use crate::secret::SecretUrl;

/// `[nats]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://` or `tls://` URL (credentials in it are a secret; `url_file` reads it from a file).
    pub url: SecretUrl,
    /// JetStream stream the events go to; default `UDL_CE`.
    pub stream: String,
    /// Subjects are `<subject_prefix>.<entity>.<action>`; default `udl.ce`.
    pub subject_prefix: String,
    /// How long the stream remembers a message id, so a replayed event is stored once; must
    /// outlast any relay restart; default 1 h.
    pub duplicate_window: Duration,
    /// How long the stream keeps events (ScyllaDB holds the analytics copy); default 7 days.
    pub max_age: Duration,
}

const DEFAULT_STREAM: &str = "UDL_CE";
const DEFAULT_PREFIX: &str = "udl.ce";

/// A stream name NATS accepts and a shell can pass around.
fn stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Dot-separated tokens of letters, digits, `_` and `-` (no wildcards).
fn subject_prefix(prefix: &str) -> bool {
    prefix.split('.').all(|token| {
        !token.is_empty()
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

impl NatsConfig {
    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["nats", "tls"], problems);
        let stream = s
            .string("stream", problems)
            .unwrap_or_else(|| DEFAULT_STREAM.into());
        if !stream_name(&stream) {
            problems.push(Problem {
                key: "nats.stream".into(),
                problem: "takes letters, digits, '_' and '-' (at most 64)".into(),
            });
        }
        let prefix = s
            .string("subject_prefix", problems)
            .unwrap_or_else(|| DEFAULT_PREFIX.into());
        if !subject_prefix(&prefix) {
            problems.push(Problem {
                key: "nats.subject_prefix".into(),
                problem: "takes dot-separated tokens of letters, digits, '_' and '-'".into(),
            });
        }
        let duplicate_window = s
            .duration("duplicate_window", problems)
            .unwrap_or(Duration::from_secs(3600));
        let max_age = s
            .duration("max_age", problems)
            .unwrap_or(Duration::from_secs(7 * 24 * 3600));
        if duplicate_window > max_age {
            problems.push(Problem {
                key: "nats.duplicate_window".into(),
                problem: "cannot be longer than nats.max_age".into(),
            });
        }
        s.finish(problems);
        Some(NatsConfig {
            url: url?,
            stream,
            subject_prefix: prefix,
            duplicate_window,
            max_age,
        })
    }
}

impl fmt::Display for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = humantime::format_duration;
        writeln!(f, "[nats]")?;
        writeln!(f, "url = \"{}\"", self.url)?;
        writeln!(f, "stream = \"{}\"", self.stream)?;
        writeln!(f, "subject_prefix = \"{}\"", self.subject_prefix)?;
        writeln!(f, "duplicate_window = \"{}\"", human(self.duplicate_window))?;
        writeln!(f, "max_age = \"{}\"", human(self.max_age))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(stream_name("UDL_CE") && !stream_name("a.b") && !stream_name(""));
        assert!(subject_prefix("udl.ce") && !subject_prefix("udl.*") && !subject_prefix("a..b"));
    }
}
