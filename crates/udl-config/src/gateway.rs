//! `[gateway]`: udl's HTTP/JSON API in `udl serve`, for the services that are not written in
//! Rust. Present, it serves `/v1`; absent, `udl serve` answers health and metrics only.
//!
//! A calling service is identified by its client certificate (with `tls.client_ca_file`) or by
//! its token; each `[gateway.services.<name>]` says what that service may do. The end user comes
//! from a short-lived JWT signed by the platform's auth service (`[gateway.jwt]`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::problem::Problem;
use crate::reader::Section;
use crate::secret::Secret;

/// `[gateway]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Largest request body accepted, in bytes; default 1 MiB.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 504; default 10 s.
    pub request_timeout: Duration,
    /// Most requests handled at once; beyond it, 503 with `Retry-After`; default 256.
    pub max_in_flight: usize,
    /// Requests per minute one end user (JWT `sub`) may make across services; default 600.
    pub actor_requests_per_minute: u32,
    /// How long a session lives without use (`/v1/sessions`): `retention.sessions`.
    pub session_idle: Duration,
    /// How long `/v1/embedding-cache` and `/v1/generation-cache` keep an entry; default 1 day.
    pub cache_ttl: Duration,
    /// How end-user tokens are checked.
    pub jwt: JwtConfig,
    /// TLS for the listener, and mutual TLS when a client CA is set.
    pub tls: Option<GatewayTls>,
    /// The services allowed to call, by name.
    pub services: Vec<ServiceAccess>,
}

/// `[gateway.jwt]`: end-user tokens (EdDSA or ES256 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtConfig {
    /// A JWK set file (`{"keys": [...]}`, Ed25519 `OKP` or P-256 `EC` public keys with `kid`).
    pub keys_file: PathBuf,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`; default 30 s.
    pub leeway: Duration,
    /// Longest lifetime (`exp - iat`) accepted; default 15 min.
    pub max_lifetime: Duration,
}

/// `[gateway.tls]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayTls {
    /// PEM certificate chain of the listener.
    pub cert_file: PathBuf,
    /// PEM private key of the listener.
    pub key_file: PathBuf,
    /// PEM CA whose client certificates are accepted; set, a client without one is refused
    /// at the handshake.
    pub client_ca_file: Option<PathBuf>,
}

/// `[gateway.services.<name>]`: one calling service and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccess {
    /// The service's name (the section's key), recorded in the audit log.
    pub name: String,
    /// Its bearer token (`token` or `token_file`), when it does not present a certificate.
    pub token: Option<Secret>,
    /// The DNS name or common name its client certificate carries, with mutual TLS.
    pub certificate_name: Option<String>,
    /// Entities it may reach (`"*"`: every registered one).
    pub entities: Vec<String>,
    /// Operations it may use: `read`, `list`, `create`, `update`, `delete`, `search`, and the
    /// non-entity `sessions`, `rate_limit`, `cache`, `analytics`.
    pub operations: Vec<String>,
    /// Purposes of use its requests may state.
    pub purposes: Vec<String>,
    /// End-user roles it may act for.
    pub roles: Vec<String>,
    /// Requests per minute for the whole service; default 6000.
    pub requests_per_minute: u32,
}

/// Every operation a service may be allowed.
pub const GATEWAY_OPERATIONS: &[&str] = &[
    "read",
    "list",
    "create",
    "update",
    "delete",
    "search",
    "sessions",
    "rate_limit",
    "cache",
    "analytics",
];

impl GatewayConfig {
    pub(crate) fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let max_body_bytes = s
            .int("max_body_bytes", 1024, 64 << 20, problems)
            .unwrap_or(1 << 20) as usize;
        let request_timeout = s
            .duration("request_timeout", problems)
            .unwrap_or(Duration::from_secs(10));
        let max_in_flight = s.int("max_in_flight", 1, 100_000, problems).unwrap_or(256) as usize;
        let actor_requests_per_minute = s
            .int("actor_requests_per_minute", 1, 1_000_000, problems)
            .unwrap_or(600) as u32;
        if s.duration("session_idle", problems).is_some() {
            problems.push(Problem {
                key: "gateway.session_idle".into(),
                problem: "moved: set retention.sessions (retention is declared per data class)"
                    .into(),
            });
        }
        // Filled in from `retention.sessions` once both sections are read.
        let session_idle = crate::retention::RetentionConfig::default().sessions;
        let cache_ttl = s
            .duration("cache_ttl", problems)
            .unwrap_or(Duration::from_secs(24 * 60 * 60));
        let jwt = match s.section("jwt", problems) {
            Some(j) => JwtConfig::read(j, problems),
            None => {
                problems.push(Problem {
                    key: "gateway.jwt".into(),
                    problem: "required: keys_file, issuer and audience of end-user tokens".into(),
                });
                None
            }
        };
        let tls = s
            .section("tls", problems)
            .and_then(|t| GatewayTls::read(t, problems));
        let mut services = Vec::new();
        if let Some(mut table) = s.section("services", problems) {
            for (name, section) in table.subsections(problems) {
                services.extend(ServiceAccess::read(name, section, problems));
            }
        }
        if services.is_empty() {
            problems.push(Problem {
                key: "gateway.services".into(),
                problem: "name at least one calling service ([gateway.services.<name>])".into(),
            });
        }
        let client_certs = tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
        for service in &services {
            if service.certificate_name.is_some() && !client_certs {
                problems.push(Problem {
                    key: format!("gateway.services.{}.certificate_name", service.name),
                    problem: "needs gateway.tls.client_ca_file (mutual TLS)".into(),
                });
            }
        }
        s.finish(problems);
        Some(GatewayConfig {
            max_body_bytes,
            request_timeout,
            max_in_flight,
            actor_requests_per_minute,
            session_idle,
            cache_ttl,
            jwt: jwt?,
            tls,
            services,
        })
    }
}

impl JwtConfig {
    fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let mut required = |s: &mut Section<'_>, key: &'static str| {
            let value = s.string(key, problems);
            if value.as_deref().is_none_or(str::is_empty) {
                problems.push(Problem {
                    key: format!("gateway.jwt.{key}"),
                    problem: "required".into(),
                });
            }
            value
        };
        let keys_file = required(&mut s, "keys_file");
        let issuer = required(&mut s, "issuer");
        let audience = required(&mut s, "audience");
        let leeway = s
            .duration("leeway", problems)
            .unwrap_or(Duration::from_secs(30));
        let max_lifetime = s
            .duration("max_lifetime", problems)
            .unwrap_or(Duration::from_secs(15 * 60));
        s.finish(problems);
        Some(JwtConfig {
            keys_file: PathBuf::from(keys_file?),
            issuer: issuer?,
            audience: audience?,
            leeway,
            max_lifetime,
        })
    }
}

impl GatewayTls {
    fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let cert_file = s.string("cert_file", problems);
        let key_file = s.string("key_file", problems);
        let client_ca_file = s.string("client_ca_file", problems).map(PathBuf::from);
        if cert_file.is_none() || key_file.is_none() {
            problems.push(Problem {
                key: "gateway.tls".into(),
                problem: "needs cert_file and key_file".into(),
            });
        }
        s.finish(problems);
        Some(GatewayTls {
            cert_file: cert_file?.into(),
            key_file: key_file?.into(),
            client_ca_file,
        })
    }
}

impl ServiceAccess {
    fn read(name: String, mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
        let key = |k: &str| format!("gateway.services.{name}.{k}");
        let token = s.secret("token", "token_file", problems);
        if token.as_ref().is_some_and(|t| t.len() < 32) {
            problems.push(Problem {
                key: key("token"),
                problem: "must be at least 32 characters".into(),
            });
        }
        let certificate_name = s.string("certificate_name", problems);
        if token.is_none() && certificate_name.is_none() {
            problems.push(Problem {
                key: key("token"),
                problem: "set token (or token_file) or certificate_name".into(),
            });
        }
        let mut list = |s: &mut Section<'_>, k: &'static str| {
            let items = s.string_list(k, problems).unwrap_or_default();
            if items.is_empty() {
                problems.push(Problem {
                    key: key(k),
                    problem: "required: a non-empty list".into(),
                });
            }
            items
        };
        let entities = list(&mut s, "entities");
        let operations = list(&mut s, "operations");
        let purposes = list(&mut s, "purposes");
        let roles = list(&mut s, "roles");
        for op in &operations {
            if !GATEWAY_OPERATIONS.contains(&op.as_str()) {
                problems.push(Problem {
                    key: key("operations"),
                    problem: format!(
                        "unknown operation; one of {}",
                        GATEWAY_OPERATIONS.join(", ")
                    ),
                });
            }
        }
        let requests_per_minute = s
            .int("requests_per_minute", 1, 10_000_000, problems)
            .unwrap_or(6000) as u32;
        s.finish(problems);
        Some(ServiceAccess {
            name,
            token: token.map(Secret::new),
            certificate_name,
            entities,
            operations,
            purposes,
            roles,
            requests_per_minute,
        })
    }

    /// Whether this service may use `operation` on `entity`.
    pub fn allows(&self, operation: &str, entity: &str) -> bool {
        self.operations.iter().any(|o| o == operation)
            && self.entities.iter().any(|e| e == "*" || e == entity)
    }
}

fn quoted(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", items.join(", "))
}

impl fmt::Display for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[gateway]")?;
        writeln!(f, "max_body_bytes = {}", self.max_body_bytes)?;
        let timeout = humantime::format_duration(self.request_timeout);
        writeln!(f, "request_timeout = \"{timeout}\"")?;
        writeln!(f, "max_in_flight = {}", self.max_in_flight)?;
        writeln!(
            f,
            "actor_requests_per_minute = {}",
            self.actor_requests_per_minute
        )?;
        let ttl = humantime::format_duration(self.cache_ttl);
        writeln!(f, "cache_ttl = \"{ttl}\"")?;
        writeln!(f, "\n[gateway.jwt]")?;
        writeln!(f, "keys_file = {:?}", self.jwt.keys_file)?;
        writeln!(f, "issuer = {:?}", self.jwt.issuer)?;
        writeln!(f, "audience = {:?}", self.jwt.audience)?;
        writeln!(
            f,
            "leeway = \"{}\"",
            humantime::format_duration(self.jwt.leeway)
        )?;
        let lifetime = humantime::format_duration(self.jwt.max_lifetime);
        writeln!(f, "max_lifetime = \"{lifetime}\"")?;
        if let Some(tls) = &self.tls {
            writeln!(f, "\n[gateway.tls]")?;
            writeln!(f, "cert_file = {:?}", tls.cert_file)?;
            writeln!(f, "key_file = {:?}", tls.key_file)?;
            if let Some(ca) = &tls.client_ca_file {
                writeln!(f, "client_ca_file = {ca:?}")?;
            }
        }
        for s in &self.services {
            writeln!(f, "\n[gateway.services.{}]", s.name)?;
            if s.token.is_some() {
                writeln!(f, "token = \"<redacted>\"")?;
            }
            if let Some(name) = &s.certificate_name {
                writeln!(f, "certificate_name = {name:?}")?;
            }
            writeln!(f, "entities = {}", quoted(&s.entities))?;
            writeln!(f, "operations = {}", quoted(&s.operations))?;
            writeln!(f, "purposes = {}", quoted(&s.purposes))?;
            writeln!(f, "roles = {}", quoted(&s.roles))?;
            writeln!(f, "requests_per_minute = {}", s.requests_per_minute)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::UdlConfig;

    fn problems(toml: &str) -> Vec<String> {
        match UdlConfig::from_sources(&[], Some(("udl.toml", toml)), Vec::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.problem))
                .collect(),
        }
    }

    #[test]
    fn every_gateway_problem_is_reported_by_key_without_the_token() {
        let found = problems(
            "[gateway]\nmax_in_flight = 0\n[gateway.services.rag]\ntoken = \"fake-short\"\n\
             certificate_name = \"rag.fake\"\nentities = [\"*\"]\noperations = [\"read\", \"drop\"]\n\
             purposes = []\nroles = [\"clinician\"]\n",
        );
        let text = found.join("\n");
        for expected in [
            "gateway.max_in_flight",
            "gateway.jwt: required",
            "gateway.services.rag.token: must be at least 32 characters",
            "gateway.services.rag.certificate_name: needs gateway.tls.client_ca_file",
            "gateway.services.rag.operations: unknown operation",
            "gateway.services.rag.purposes: required",
            "gateway: needs [privacy]",
            "gateway: needs [redis]",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        assert!(!text.contains("fake-short"), "{text}");
    }

    #[test]
    fn a_valid_section_reads_and_prints_with_the_token_redacted() {
        let toml = "[gateway]\n[gateway.jwt]\nkeys_file = \"/fake/jwks.json\"\nissuer = \"fake\"\n\
                    audience = \"udl\"\n[gateway.services.rag]\n\
                    token = \"fake-token-0000000000000000000000000001\"\nentities = [\"*\"]\n\
                    operations = \"read,list\"\npurposes = [\"treatment\"]\nroles = [\"clinician\"]\n";
        let config = super::GatewayConfig::read(
            crate::reader::Section::new(
                "gateway",
                toml.parse::<toml::Table>().unwrap()["gateway"]
                    .as_table()
                    .unwrap(),
            ),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(config.services[0].operations, ["read", "list"]);
        assert!(config.services[0].allows("list", "conversations"));
        assert!(!config.services[0].allows("delete", "conversations"));
        let shown = config.to_string();
        assert!(
            shown.contains("token = \"<redacted>\"") && !shown.contains("fake-token"),
            "{shown}"
        );
    }
}
