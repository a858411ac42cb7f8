//! Secret-bearing values whose `Debug` and `Display` never show the secret.

use std::fmt;

use url::Url;

/// A connection URL that may embed a password. Shown with the password and any
/// secret-looking query parameter replaced by `***`. A MongoDB URL may name several hosts
/// (`mongodb://h1:27017,h2:27017/?replicaSet=rs0`), which URL parsers refuse: it is checked as
/// if it named the first one and handed to the driver as written.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    /// As written.
    text: String,
    /// As parsed, with a list of hosts cut to its first.
    parsed: Url,
    /// The list of hosts, when there are several: `h1:27017,h2:27017`.
    hosts: Option<String>,
}

/// The URL schemes whose URLs may name several hosts.
const MULTI_HOST_SCHEMES: &[&str] = &["mongodb://"];

/// `text` with a list of hosts cut to its first, and the list, for schemes that allow one.
fn first_host_only(text: &str) -> (String, Option<String>) {
    let Some(scheme) = MULTI_HOST_SCHEMES.iter().find(|s| text.starts_with(**s)) else {
        return (text.to_owned(), None);
    };
    let rest = &text[scheme.len()..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let hosts_start = authority.rfind('@').map_or(0, |at| at + 1);
    let hosts = &authority[hosts_start..];
    match hosts.split_once(',') {
        Some((first, _)) => {
            let cut = format!(
                "{scheme}{}{first}{}",
                &authority[..hosts_start],
                &rest[authority_end..]
            );
            (cut, Some(hosts.to_owned()))
        }
        None => (text.to_owned(), None),
    }
}

const SECRET_PARAMS: &[&str] = &["password", "pass", "secret", "token", "key", "sslpassword"];

impl SecretUrl {
    /// Wraps a parsed URL.
    pub fn new(url: Url) -> Self {
        SecretUrl {
            text: url.as_str().to_owned(),
            parsed: url,
            hosts: None,
        }
    }

    /// Parses `text` (a MongoDB URL may name several hosts); the parser's error otherwise.
    pub fn parse(text: &str) -> Result<Self, url::ParseError> {
        let (checked, hosts) = first_host_only(text);
        let parsed = Url::parse(&checked)?;
        Ok(SecretUrl {
            text: if hosts.is_some() {
                text.to_owned()
            } else {
                parsed.as_str().to_owned()
            },
            parsed,
            hosts,
        })
    }

    /// The full URL, secret included. Only for handing to a driver.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The parsed URL, secret included (with a list of hosts cut to its first). Only for
    /// handing to a driver and for checks of scheme and parameters.
    pub fn expose_url(&self) -> &Url {
        &self.parsed
    }

    /// The URL with secrets replaced by `***` (every host shown).
    pub fn redacted(&self) -> String {
        let shown = self.redacted_first_host();
        match (&self.hosts, self.parsed.host_str()) {
            (Some(hosts), Some(host)) => {
                let first = match self.parsed.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                };
                shown.replacen(&first, hosts, 1)
            }
            _ => shown,
        }
    }

    fn redacted_first_host(&self) -> String {
        let mut shown = self.parsed.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        if shown.query().is_some() {
            let pairs: Vec<(String, String)> = shown
                .query_pairs()
                .map(|(k, v)| {
                    let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                    (
                        k.into_owned(),
                        if secret { "***".into() } else { v.into_owned() },
                    )
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        shown.to_string()
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A secret string (password, token). Shown as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The secret itself. Only for handing to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_and_secret_params_are_hidden() {
        let url = Url::parse("postgres://app:hunter2@db:5432/x?sslmode=require&password=hunter3")
            .unwrap();
        let s = SecretUrl::new(url);
        for shown in [s.to_string(), format!("{s:?}")] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("hunter3"),
                "{shown}"
            );
            assert!(shown.contains("sslmode=require"), "{shown}");
        }
        assert!(s.expose().contains("hunter2"));
    }

    #[test]
    fn a_mongodb_url_may_name_several_hosts_and_is_kept_as_written() {
        let text = "mongodb://app:hunter2@127.0.0.1:27031,127.0.0.1:27032/?replicaSet=rs3";
        let s = SecretUrl::parse(text).unwrap();
        assert_eq!(s.expose(), text);
        assert_eq!(s.expose_url().host_str(), Some("127.0.0.1"));
        assert_eq!(s.expose_url().port(), Some(27031));
        assert_eq!(
            s.to_string(),
            "mongodb://app:***@127.0.0.1:27031,127.0.0.1:27032/?replicaSet=rs3"
        );
        assert!(
            SecretUrl::parse("postgres://db1:5432,db2:5432/x").is_err(),
            "only MongoDB URLs name several hosts"
        );
    }
}
