//! Typed reads from the merged tree, collecting every problem instead of stopping at one.

use std::collections::BTreeSet;
use std::time::Duration;

use toml::{Table, Value};

use crate::problem::Problem;
use crate::secret::SecretUrl;

/// Reads one section, remembering which keys were consumed so leftovers can be reported.
pub struct Section<'a> {
    path: String,
    table: &'a Table,
    used: BTreeSet<&'static str>,
    /// Every key was consumed at once (by [`Section::subsections`]).
    all_used: bool,
}

impl<'a> Section<'a> {
    /// The section at `path` (dotted) backed by `table`.
    pub fn new(path: impl Into<String>, table: &'a Table) -> Self {
        Section {
            path: path.into(),
            table,
            used: BTreeSet::new(),
            all_used: false,
        }
    }

    /// Dotted path of this section.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn problem(&self, problems: &mut Vec<Problem>, key: &str, problem: impl Into<String>) {
        problems.push(Problem {
            key: self.key(key),
            problem: problem.into(),
        });
    }

    fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.table.get(key)
    }

    /// A nested section, if present.
    pub fn section(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Section<'a>> {
        match self.raw(key)? {
            Value::Table(t) => Some(Section::new(self.key(key), t)),
            _ => {
                self.problem(problems, key, "must be a section");
                None
            }
        }
    }

    /// Every key of this section whose value is a table, as named sections (for
    /// `[parent.<name>]` lists such as `[gateway.services.<name>]`); any other value is a
    /// problem. Consumes every key.
    pub fn subsections(&mut self, problems: &mut Vec<Problem>) -> Vec<(String, Section<'a>)> {
        let mut out = Vec::new();
        for (name, value) in self.table {
            match value {
                Value::Table(t) => out.push((name.clone(), Section::new(self.key(name), t))),
                _ => self.problem(problems, name, "must be a section"),
            }
        }
        self.all_used = true;
        out
    }

    /// A non-secret string.
    pub fn string(&mut self, key: &'static str, problems: &mut Vec<Problem>) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.problem(problems, key, "must be a string");
                None
            }
        }
    }

    /// A secret string, given directly or through `<key>_file` (a path whose content, minus
    /// a trailing newline, is the value). Messages never include the value.
    pub fn secret(
        &mut self,
        key: &'static str,
        file_key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        let direct = self.raw(key);
        let file = self.raw(file_key);
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    problems,
                    key,
                    format!("set either {key} or {file_key}, not both"),
                );
                None
            }
            (Some(Value::String(s)), None) => Some(s.clone()),
            (Some(_), None) => {
                self.problem(problems, key, "must be a string");
                None
            }
            (None, Some(Value::String(path))) => match std::fs::read_to_string(path) {
                Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_owned()),
                Err(e) => {
                    self.problem(
                        problems,
                        file_key,
                        format!("cannot read {path}: {}", e.kind()),
                    );
                    None
                }
            },
            (None, Some(_)) => {
                self.problem(problems, file_key, "must be a file path");
                None
            }
            (None, None) => None,
        }
    }

    /// A required secret URL whose scheme is one of `schemes`.
    pub fn url(&mut self, schemes: &[&str], problems: &mut Vec<Problem>) -> Option<SecretUrl> {
        let Some(text) = self.secret("url", "url_file", problems) else {
            if !problems.iter().any(|p| p.key.starts_with(&self.key("url"))) {
                self.problem(problems, "url", "required");
            }
            return None;
        };
        match SecretUrl::parse(&text) {
            // The url crate's messages describe the defect, never the input.
            Err(e) => {
                self.problem(problems, "url", format!("not a valid URL ({e})"));
                None
            }
            Ok(url) => self.checked_url(url, schemes, problems),
        }
    }

    /// `url`, if its scheme is one of `schemes` and it names a host.
    fn checked_url(
        &mut self,
        url: SecretUrl,
        schemes: &[&str],
        problems: &mut Vec<Problem>,
    ) -> Option<SecretUrl> {
        let u = url.expose_url();
        if !schemes.contains(&u.scheme()) {
            let problem = format!(
                "unknown scheme {:?}; expected one of {}",
                u.scheme(),
                schemes.join(", ")
            );
            self.problem(problems, "url", problem);
            None
        } else if u.host_str().is_none_or(str::is_empty) {
            self.problem(problems, "url", "has no host");
            None
        } else {
            Some(url)
        }
    }

    /// An integer in `min..=max`; strings of digits are accepted (environment values).
    pub fn int(
        &mut self,
        key: &'static str,
        min: u64,
        max: u64,
        problems: &mut Vec<Problem>,
    ) -> Option<u64> {
        let n = match self.raw(key)? {
            Value::Integer(i) => u64::try_from(*i).ok(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.problem(
                    problems,
                    key,
                    format!("must be between {min} and {max} (got {n})"),
                );
                None
            }
            None => {
                self.problem(
                    problems,
                    key,
                    format!("must be an integer between {min} and {max}"),
                );
                None
            }
        }
    }

    /// A boolean; `"true"`/`"false"` strings are accepted.
    pub fn bool(&mut self, key: &'static str, problems: &mut Vec<Problem>) -> Option<bool> {
        match self.raw(key)? {
            Value::Boolean(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => {
                self.problem(problems, key, "must be true or false");
                None
            }
        }
    }

    /// A duration written like `"5s"`, `"250ms"`, `"10m"`.
    pub fn duration(&mut self, key: &'static str, problems: &mut Vec<Problem>) -> Option<Duration> {
        match self.raw(key)? {
            Value::String(s) => match humantime::parse_duration(s) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => {
                    self.problem(
                        problems,
                        key,
                        "must be a positive duration such as \"5s\" or \"250ms\"",
                    );
                    None
                }
            },
            _ => {
                self.problem(problems, key, "must be a duration string such as \"5s\"");
                None
            }
        }
    }

    /// A list of strings; a comma-separated string is accepted (environment values).
    pub fn string_list(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Vec<String>> {
        match self.raw(key)? {
            Value::String(s) => Some(
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect(),
            ),
            Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect();
                if strings.is_none() {
                    self.problem(problems, key, "must be a list of strings");
                }
                strings
            }
            _ => {
                self.problem(problems, key, "must be a list of strings");
                None
            }
        }
    }

    /// Reports every key of this section that no read consumed.
    pub fn finish(self, problems: &mut Vec<Problem>) {
        if self.all_used {
            return;
        }
        for key in self.table.keys() {
            if !self.used.contains(key.as_str()) {
                problems.push(Problem {
                    key: self.key(key),
                    problem: "unknown key".into(),
                });
            }
        }
    }
}
