//! `[scylla]`: the store's config section, read by udl-config's layered loader.

use std::fmt;

use udl_config::{
    ca_cert, identifier, pool_sections, PoolConfig, Problem, ResilienceSettings, Secret, Section,
    StoreConfig,
};

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

impl StoreConfig for ScyllaConfig {
    const SECTION: &'static str = "scylla";

    fn read(mut s: Section<'_>, problems: &mut Vec<Problem>) -> Option<Self> {
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
        let keyspace = identifier(&mut s, "keyspace", "udl", problems);
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
        // Retention is declared once per data class, under [retention].
        for (key, moved_to) in [
            ("analytics_ttl", "retention.analytics"),
            ("chat_archive_retention", "retention.chat_archive"),
        ] {
            if s.duration(key, problems).is_some() {
                problems.push(Problem {
                    key: format!("{}.{key}", s.path()),
                    problem: format!(
                        "moved: set {moved_to} (retention is declared per data class)"
                    ),
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
        let tls_ca_cert = ca_cert(&mut s, problems);
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
            tls,
            tls_ca_cert,
            pool,
            resilience,
        })
    }

    fn resilience(&self) -> &ResilienceSettings {
        &self.resilience
    }

    fn plaintext(&self) -> Option<(&'static str, &'static str)> {
        (!self.tls).then_some(("scylla.tls", "set scylla.tls = true"))
    }
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
        ] {
            writeln!(f, "{key} = \"{}\"", humantime::format_duration(value))?;
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
        pool_sections(f, "scylla", &self.pool, &self.resilience)
    }
}
