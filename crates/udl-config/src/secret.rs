//! Secret-bearing values whose `Debug` and `Display` never show the secret.

use std::fmt;

use url::Url;

/// A connection URL that may embed a password. Shown with the password and any
/// secret-looking query parameter replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

const SECRET_PARAMS: &[&str] = &["password", "pass", "secret", "token", "key", "sslpassword"];

impl SecretUrl {
    /// Wraps a parsed URL.
    pub fn new(url: Url) -> Self {
        SecretUrl(url)
    }

    /// The full URL, secret included. Only for handing to a driver.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL, secret included. Only for handing to a driver.
    pub fn expose_url(&self) -> &Url {
        &self.0
    }

    /// The URL with secrets replaced by `***`.
    pub fn redacted(&self) -> String {
        let mut shown = self.0.clone();
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
}
