//! Merging the layers: TOML file, then `UDL__SECTION__KEY` environment variables.

use toml::{Table, Value};

use crate::problem::Problem;

/// Environment variable prefix; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "UDL__";

/// Parses the TOML file text. TOML errors can quote the offending line, which may hold a
/// secret, so only the position and the parser's message are kept.
pub fn parse_file(name: &str, text: &str) -> Result<Table, Problem> {
    text.parse::<Table>().map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(1);
        Problem {
            key: name.to_owned(),
            problem: format!("invalid TOML at line {line}: {}", e.message()),
        }
    })
}

/// Overlays `UDL__A__B=value` variables onto `table` as string values at `a.b`.
/// Readers accept strings for numbers, booleans and lists, so no type guessing happens here.
pub fn overlay_env(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<Problem>,
) {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            problems.push(Problem {
                key: name.clone(),
                problem: "malformed variable name (empty segment)".into(),
            });
            continue;
        }
        insert(table, &path, Value::String(value), &name, problems);
    }
}

fn insert(
    table: &mut Table,
    path: &[String],
    value: Value,
    var: &str,
    problems: &mut Vec<Problem>,
) {
    let (last, parents) = path.split_last().expect("path has at least one segment");
    let mut current = table;
    for segment in parents {
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        match entry {
            Value::Table(t) => current = t,
            _ => {
                problems.push(Problem {
                    key: var.to_owned(),
                    problem: format!("{segment} is a value, not a section"),
                });
                return;
            }
        }
    }
    current.insert(last.clone(), value);
}
