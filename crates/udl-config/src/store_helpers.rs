//! What several stores' sections read and print the same way.

use std::fmt;
use std::path::PathBuf;

use crate::pool::PoolConfig;
use crate::problem::Problem;
use crate::reader::Section;
use crate::resilience::ResilienceSettings;

/// A schema, database or keyspace name at `key` (default `default`): such names end up in DDL,
/// so only plain identifiers are allowed.
pub fn identifier(
    s: &mut Section,
    key: &'static str,
    default: &str,
    problems: &mut Vec<Problem>,
) -> String {
    let value = s.string(key, problems).unwrap_or_else(|| default.into());
    let ok = !value.is_empty()
        && value.len() <= 48
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        problems.push(Problem {
            key: format!("{}.{key}", s.path()),
            problem: "must be 1-48 characters of a-z, 0-9 and _, starting with a letter or _"
                .into(),
        });
    }
    value
}

/// `tls_ca_cert`: the CA certificate (PEM) a store's server certificate must chain to, which
/// must be a readable file.
pub fn ca_cert(s: &mut Section, problems: &mut Vec<Problem>) -> Option<PathBuf> {
    let path = s.string("tls_ca_cert", problems).map(PathBuf::from)?;
    if std::fs::metadata(&path)
        .map(|m| !m.is_file())
        .unwrap_or(true)
    {
        problems.push(Problem {
            key: format!("{}.tls_ca_cert", s.path()),
            problem: format!("{} is not a readable file", path.display()),
        });
    }
    Some(path)
}

/// Prints a store's `[<store>.pool]` and `[<store>.resilience]` subsections.
pub fn pool_sections(
    f: &mut fmt::Formatter<'_>,
    store: &str,
    pool: &PoolConfig,
    resilience: &ResilienceSettings,
) -> fmt::Result {
    write!(
        f,
        "\n[{store}.pool]\n{pool}\n[{store}.resilience]\n{resilience}"
    )
}
