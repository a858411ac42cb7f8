//! Per-store sections: `[postgres]`, `[mongo]`, `[redis]`, `[scylla]`.

use std::fmt;
use std::time::Duration;

use crate::pool::PoolConfig;
use crate::problem::Problem;
use crate::reader::Section;
use crate::resilience::ResilienceSettings;
use crate::secret::{Secret, SecretUrl};

/// `[postgres]`: the source of truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://` or `postgresql://` URL; `sslmode=require` (or stricter) turns on TLS.
    pub url: SecretUrl,
    /// Schema holding udl's tables (`search_path` of every connection).
    pub schema: String,
    /// Server-side limit for one statement.
    pub statement_timeout: Duration,
    /// Pool, default 5–20 connections.
    pub pool: PoolConfig,
    /// Timeout, concurrency limit, retries and breaker of the resilience layer.
    pub resilience: ResilienceSettings,
}

/// `[mongo]`: documents, conversations, embeddings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MongoConfig {
    /// `mongodb://` or `mongodb+srv://` URL.
    pub url: SecretUrl,
    /// Database name.
    pub database: String,
    /// Pool, default 10–50 connections.
    pub pool: PoolConfig,
    /// Timeout, concurrency limit, retries and breaker of the resilience layer.
    pub resilience: ResilienceSettings,
}

/// `[redis]`: caches, sessions, rate limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` URL.
    pub url: SecretUrl,
    /// Prefix of every key udl writes.
    pub key_prefix: String,
    /// Whether `url` is a seed node of a Redis Cluster (the cluster client then finds the
    /// other nodes and follows slot moves).
    pub cluster: bool,
    /// PEM file of the certificate authority that signed the server's certificate, for
    /// `rediss://` servers whose certificate the system roots do not cover.
    pub tls_ca_cert: Option<std::path::PathBuf>,
    /// Pool, default 5–25 connections.
    pub pool: PoolConfig,
    /// Timeout, concurrency limit, retries and breaker of the resilience layer.
    pub resilience: ResilienceSettings,
}

/// `[scylla]`: time series, archives, analytics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Keyspace name.
    pub keyspace: String,
    /// Local data center for DC-aware routing, if any.
    pub local_dc: Option<String>,
    /// User name, if authentication is on.
    pub username: Option<String>,
    /// Password, if authentication is on.
    pub password: Option<Secret>,
    /// Default consistency level (`local_quorum`, `one`, `quorum`, ...).
    pub consistency: String,
    /// How the keyspace is replicated when udl creates it.
    pub replication: Replication,
    /// Client-side bound on one request, default 5 s.
    pub request_timeout: std::time::Duration,
    /// Time span of one time-series partition, default one day. Fixed for the life of the
    /// data: reads compute partitions from it.
    pub time_bucket: std::time::Duration,
    /// Lifetime of analytics rows (metrics, events), default 13 months (396 days).
    pub analytics_ttl: std::time::Duration,
    /// How long archived chat messages are kept; unset keeps them until deleted.
    pub chat_archive_retention: Option<std::time::Duration>,
    /// Where analytics writes wait while ScyllaDB is unreachable (one directory per
    /// process); unset, such writes fail with `Unavailable` instead.
    pub spool_dir: Option<std::path::PathBuf>,
    /// Addresses nodes announce → addresses to dial (`"10.0.0.5:9042=203.0.113.5:9042"`),
    /// for clusters behind NAT or a proxy.
    pub address_map: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Connect over TLS (certificate and address verified), default off.
    pub tls: bool,
    /// CA certificate (PEM) the nodes' certificates must chain to; default: the system's.
    pub tls_ca_cert: Option<std::path::PathBuf>,
    /// Connections per host, default 3–10.
    pub pool: PoolConfig,
    /// Timeout, concurrency limit, retries and breaker of the resilience layer.
    pub resilience: ResilienceSettings,
}

/// Keyspace replication: `replication_factor = N` (SimpleStrategy, one data center) or
/// `replication_by_dc = ["dc1:3", "dc2:3"]` (NetworkTopologyStrategy, production).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replication {
    /// SimpleStrategy with this many replicas.
    Simple(u32),
    /// NetworkTopologyStrategy with replicas per data center.
    PerDataCenter(Vec<(String, u32)>),
}

const CONSISTENCY_LEVELS: &[&str] = &[
    "any",
    "one",
    "two",
    "three",
    "quorum",
    "all",
    "local_quorum",
    "each_quorum",
    "local_one",
];

impl PostgresConfig {
    pub(crate) fn read(mut s: Section, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["postgres", "postgresql"], problems);
        let schema = s
            .string("schema", problems)
            .unwrap_or_else(|| "public".into());
        check_identifier(&s, "schema", &schema, problems);
        let statement_timeout = s
            .duration("statement_timeout", problems)
            .unwrap_or(Duration::from_secs(30));
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(5, 20), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        s.finish(problems);
        Some(PostgresConfig {
            url: url?,
            schema,
            statement_timeout,
            pool,
            resilience,
        })
    }
}

impl MongoConfig {
    pub(crate) fn read(mut s: Section, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["mongodb", "mongodb+srv"], problems);
        let database = s
            .string("database", problems)
            .unwrap_or_else(|| "udl".into());
        check_identifier(&s, "database", &database, problems);
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(10, 50), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        s.finish(problems);
        Some(MongoConfig {
            url: url?,
            database,
            pool,
            resilience,
        })
    }
}

impl RedisConfig {
    pub(crate) fn read(mut s: Section, problems: &mut Vec<Problem>) -> Option<Self> {
        let url = s.url(&["redis", "rediss"], problems);
        let key_prefix = s
            .string("key_prefix", problems)
            .unwrap_or_else(|| "udl:".into());
        let cluster = s.bool("cluster", problems).unwrap_or(false);
        let tls_ca_cert = read_ca_cert(&mut s, problems);
        let plaintext_url = url
            .as_ref()
            .is_some_and(|u| !u.expose().starts_with("rediss://"));
        if tls_ca_cert.is_some() && plaintext_url {
            problems.push(Problem {
                key: format!("{}.tls_ca_cert", s.path()),
                problem: "needs a rediss:// url (TLS)".into(),
            });
        }
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(5, 25), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        s.finish(problems);
        Some(RedisConfig {
            url: url?,
            key_prefix,
            cluster,
            tls_ca_cert,
            pool,
            resilience,
        })
    }
}

impl ScyllaConfig {
    pub(crate) fn read(mut s: Section, problems: &mut Vec<Problem>) -> Option<Self> {
        let nodes = s.string_list("nodes", problems);
        match &nodes {
            None if !problems.iter().any(|p| p.key.ends_with("scylla.nodes")) => {
                problems.push(Problem {
                    key: format!("{}.nodes", s.path()),
                    problem: "required (list of host:port)".into(),
                })
            }
            Some(list) if list.is_empty() => problems.push(Problem {
                key: format!("{}.nodes", s.path()),
                problem: "must name at least one host:port".into(),
            }),
            Some(list) => {
                for node in list.iter().filter(|n| !is_host_port(n)) {
                    problems.push(Problem {
                        key: format!("{}.nodes", s.path()),
                        problem: format!("{node:?} is not host:port"),
                    });
                }
            }
            None => {}
        }
        let keyspace = s
            .string("keyspace", problems)
            .unwrap_or_else(|| "udl".into());
        check_identifier(&s, "keyspace", &keyspace, problems);
        let local_dc = s.string("local_dc", problems);
        let username = s.string("username", problems);
        let password = s
            .secret("password", "password_file", problems)
            .map(Secret::new);
        let consistency = s
            .string("consistency", problems)
            .unwrap_or_else(|| "local_quorum".into());
        if !CONSISTENCY_LEVELS.contains(&consistency.as_str()) {
            problems.push(Problem {
                key: format!("{}.consistency", s.path()),
                problem: format!(
                    "unknown level; expected one of {}",
                    CONSISTENCY_LEVELS.join(", ")
                ),
            });
        }
        let replication = read_replication(&mut s, problems);
        let request_timeout = s
            .duration("request_timeout", problems)
            .unwrap_or(std::time::Duration::from_secs(5));
        let time_bucket = s
            .duration("time_bucket", problems)
            .unwrap_or(std::time::Duration::from_secs(86_400));
        let analytics_ttl = s
            .duration("analytics_ttl", problems)
            .unwrap_or(std::time::Duration::from_secs(396 * 86_400));
        let chat_archive_retention = s.duration("chat_archive_retention", problems);
        // CQL TTLs are whole seconds up to 20 years.
        for (key, ttl) in [
            ("analytics_ttl", Some(analytics_ttl)),
            ("chat_archive_retention", chat_archive_retention),
        ] {
            if ttl.is_some_and(|t| !(1..=630_720_000).contains(&t.as_secs())) {
                problems.push(Problem {
                    key: format!("{}.{key}", s.path()),
                    problem: "must be between 1s and 20 years".into(),
                });
            }
        }
        if time_bucket.as_millis() < 1_000 {
            problems.push(Problem {
                key: format!("{}.time_bucket", s.path()),
                problem: "must be at least 1s".into(),
            });
        }
        let spool_dir = s
            .string("spool_dir", problems)
            .map(std::path::PathBuf::from);
        let address_map = read_address_map(&mut s, problems);
        let tls = s.bool("tls", problems).unwrap_or(false);
        let tls_ca_cert = read_ca_cert(&mut s, problems);
        if tls_ca_cert.is_some() && !tls {
            problems.push(Problem {
                key: format!("{}.tls_ca_cert", s.path()),
                problem: "needs tls = true".into(),
            });
        }
        let pool = PoolConfig::read(&mut s, PoolConfig::sized(3, 10), problems);
        let resilience = ResilienceSettings::read(&mut s, problems);
        s.finish(problems);
        Some(ScyllaConfig {
            spool_dir,
            address_map,
            nodes: nodes?,
            keyspace,
            local_dc,
            username,
            password,
            consistency,
            replication,
            request_timeout,
            time_bucket,
            analytics_ttl,
            chat_archive_retention,
            tls,
            tls_ca_cert,
            pool,
            resilience,
        })
    }
}

/// `tls_ca_cert`: the CA certificate (PEM) a store's server certificate must chain to, which
/// must be a readable file.
fn read_ca_cert(s: &mut Section, problems: &mut Vec<Problem>) -> Option<std::path::PathBuf> {
    let path = s
        .string("tls_ca_cert", problems)
        .map(std::path::PathBuf::from)?;
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

fn read_address_map(
    s: &mut Section,
    problems: &mut Vec<Problem>,
) -> Vec<(std::net::SocketAddr, std::net::SocketAddr)> {
    let entries = s.string_list("address_map", problems).unwrap_or_default();
    let mut map = Vec::with_capacity(entries.len());
    for entry in &entries {
        let parsed = entry
            .split_once('=')
            .and_then(|(from, to)| Some((from.trim().parse().ok()?, to.trim().parse().ok()?)));
        match parsed {
            Some(pair) => map.push(pair),
            None => problems.push(Problem {
                key: format!("{}.address_map", s.path()),
                problem: "entries are announced=dialled, both IP:port".into(),
            }),
        }
    }
    map
}

fn read_replication(s: &mut Section, problems: &mut Vec<Problem>) -> Replication {
    let factor = s.int("replication_factor", 1, 15, problems);
    let Some(by_dc) = s.string_list("replication_by_dc", problems) else {
        return Replication::Simple(factor.unwrap_or(1) as u32);
    };
    let mut problem = |text: String| {
        problems.push(Problem {
            key: format!("{}.replication_by_dc", s.path()),
            problem: text,
        })
    };
    if factor.is_some() {
        problem("set either replication_factor or replication_by_dc, not both".into());
    }
    let mut dcs = Vec::new();
    for entry in &by_dc {
        match entry
            .split_once(':')
            .map(|(dc, n)| (dc.trim(), n.trim().parse::<u32>()))
        {
            Some((dc, Ok(n)))
                if (1..=15).contains(&n)
                    && !dc.is_empty()
                    && dc
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) =>
            {
                dcs.push((dc.to_owned(), n))
            }
            _ => problem(format!("{entry:?} is not datacenter:replicas (1-15)")),
        }
    }
    if by_dc.is_empty() {
        problem("must name at least one datacenter:replicas".into());
    }
    Replication::PerDataCenter(dcs)
}

fn is_host_port(node: &str) -> bool {
    match node.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// Schema, database and keyspace names end up in DDL, so only plain identifiers are allowed.
fn check_identifier(s: &Section, key: &str, value: &str, problems: &mut Vec<Problem>) {
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
}

fn pool_section(
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

impl fmt::Display for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[postgres]\nurl = \"{}\"\nschema = \"{}\"",
            self.url, self.schema
        )?;
        writeln!(
            f,
            "statement_timeout = \"{}\"",
            humantime::format_duration(self.statement_timeout)
        )?;
        pool_section(f, "postgres", &self.pool, &self.resilience)
    }
}

impl fmt::Display for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[mongo]\nurl = \"{}\"\ndatabase = \"{}\"",
            self.url, self.database
        )?;
        pool_section(f, "mongo", &self.pool, &self.resilience)
    }
}

impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\ncluster = {}",
            self.url, self.key_prefix, self.cluster
        )?;
        if let Some(ca) = &self.tls_ca_cert {
            writeln!(f, "tls_ca_cert = {:?}", ca.display().to_string())?;
        }
        pool_section(f, "redis", &self.pool, &self.resilience)
    }
}

impl fmt::Display for ScyllaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[scylla]\nnodes = {:?}\nkeyspace = \"{}\"",
            self.nodes, self.keyspace
        )?;
        if let Some(dc) = &self.local_dc {
            writeln!(f, "local_dc = \"{dc}\"")?;
        }
        if let Some(user) = &self.username {
            writeln!(f, "username = \"{user}\"")?;
        }
        if self.password.is_some() {
            writeln!(f, "password = \"***\"")?;
        }
        writeln!(f, "consistency = \"{}\"", self.consistency)?;
        match &self.replication {
            Replication::Simple(n) => writeln!(f, "replication_factor = {n}")?,
            Replication::PerDataCenter(dcs) => {
                let list: Vec<String> = dcs.iter().map(|(dc, n)| format!("{dc}:{n}")).collect();
                writeln!(f, "replication_by_dc = {list:?}")?
            }
        }
        for (key, value) in [
            ("request_timeout", self.request_timeout),
            ("time_bucket", self.time_bucket),
            ("analytics_ttl", self.analytics_ttl),
        ] {
            writeln!(f, "{key} = \"{}\"", humantime::format_duration(value))?;
        }
        if let Some(retention) = self.chat_archive_retention {
            writeln!(
                f,
                "chat_archive_retention = \"{}\"",
                humantime::format_duration(retention)
            )?;
        }
        if self.tls {
            writeln!(f, "tls = true")?;
        }
        if let Some(ca) = &self.tls_ca_cert {
            writeln!(f, "tls_ca_cert = {:?}", ca.display().to_string())?;
        }
        if let Some(dir) = &self.spool_dir {
            writeln!(f, "spool_dir = {:?}", dir.display().to_string())?;
        }
        if !self.address_map.is_empty() {
            let list: Vec<String> = self
                .address_map
                .iter()
                .map(|(from, to)| format!("{from}={to}"))
                .collect();
            writeln!(f, "address_map = {list:?}")?;
        }
        pool_section(f, "scylla", &self.pool, &self.resilience)
    }
}
