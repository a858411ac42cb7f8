use std::time::Duration;

use super::*;

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems_of(file: Option<&str>, vars: &[(&str, &str)]) -> Vec<String> {
    from_sources(file.map(|t| ("udl.toml", t)), env(vars))
        .unwrap_err()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn defaults_apply_per_store() {
    let c = from_sources(
        Some((
            "udl.toml",
            "[postgres]\nurl = \"postgres://u@h/db\"\n[mongo]\nurl = \"mongodb://h\"\n\
             [redis]\nurl = \"redis://h\"\n[scylla]\nnodes = [\"h:9042\"]\n",
        )),
        vec![],
    )
    .unwrap();
    let sizes = |p: &PoolConfig| (p.min, p.max);
    assert_eq!(
        sizes(&c.store::<PostgresConfig>().cloned().unwrap().pool),
        (5, 20)
    );
    assert_eq!(
        sizes(&c.store::<MongoConfig>().cloned().unwrap().pool),
        (10, 50)
    );
    assert_eq!(
        sizes(&c.store::<RedisConfig>().cloned().unwrap().pool),
        (5, 25)
    );
    assert_eq!(
        sizes(&c.store::<ScyllaConfig>().cloned().unwrap().pool),
        (3, 10)
    );
}

#[test]
fn environment_overrides_file() {
    let c = from_sources(
        Some((
            "udl.toml",
            "[postgres]\nurl = \"postgres://u@file/db\"\n[postgres.pool]\nmax = 7\n",
        )),
        env(&[
            ("UDL__POSTGRES__URL", "postgres://u@env/db"),
            ("UDL__POSTGRES__POOL__MAX", "30"),
            ("UDL__POSTGRES__POOL__ACQUIRE_TIMEOUT", "250ms"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    let pg = c.store::<PostgresConfig>().cloned().unwrap();
    assert_eq!(pg.url.expose_url().host_str(), Some("env"));
    assert_eq!(pg.pool.max, 30);
    assert_eq!(pg.pool.acquire_timeout, Duration::from_millis(250));
}

#[test]
fn secret_from_file() {
    let dir = std::env::temp_dir().join(format!("udl-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pg-url");
    std::fs::write(&path, "postgres://app:fake-secret@h/db\n").unwrap();
    let c = from_sources(
        None,
        env(&[("UDL__POSTGRES__URL_FILE", path.to_str().unwrap())]),
    )
    .unwrap();
    let pg = c.store::<PostgresConfig>().cloned().unwrap();
    assert_eq!(pg.url.expose_url().password(), Some("fake-secret"));
    assert!(!c_display(&pg).contains("fake-secret"));
    std::fs::remove_dir_all(dir).unwrap();
}

fn c_display(pg: &PostgresConfig) -> String {
    format!("{pg} {pg:?}")
}

#[test]
fn every_problem_is_reported_once_per_line_without_secrets() {
    let problems = problems_of(
        Some(
            "[postgres]\nurl = \"mysql://app:fake-secret@h/db\"\nsurprise = 1\n\
             [postgres.pool]\nmin = 50\nmax = 5000\n[redis]\nurl = \"not a url fake-secret\"\n\
             [mongo]\n[bogus]\n",
        ),
        &[],
    );
    let joined = problems.join("\n");
    assert!(!joined.contains("fake-secret"), "{joined}");
    for expected in [
        "postgres.url: unknown scheme \"mysql\"",
        "postgres.surprise: unknown key",
        "postgres.pool.max: must be between 1 and 1000 (got 5000)",
        "redis.url: not a valid URL",
        "mongo.url: required",
        "bogus: unknown key",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "missing {expected:?} in\n{joined}"
        );
    }
}

#[test]
fn min_above_max_is_refused() {
    let problems = problems_of(
        None,
        &[
            ("UDL__REDIS__URL", "redis://h"),
            ("UDL__REDIS__POOL__MIN", "9"),
            ("UDL__REDIS__POOL__MAX", "3"),
        ],
    );
    assert_eq!(
        problems,
        ["redis.pool.min: must not exceed pool.max (9 > 3)"]
    );
}

#[test]
fn malformed_toml_reports_line_not_content() {
    let problems = problems_of(
        Some("[postgres]\nurl = \"postgres://u:fake-secret@h\nx=1\n"),
        &[],
    );
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("udl.toml: invalid TOML at line"),
        "{problems:?}"
    );
    assert!(!problems[0].contains("fake-secret"));
}

#[test]
fn scylla_nodes_and_consistency_are_checked() {
    let problems = problems_of(
        None,
        &[
            ("UDL__SCYLLA__NODES", "127.0.0.1:9042,nohost"),
            ("UDL__SCYLLA__CONSISTENCY", "most"),
        ],
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn redis_cluster_and_tls_ca_are_read_and_checked() {
    let ca = std::env::temp_dir().join(format!("udl-test-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, "fake PEM").unwrap();
    let vars = env(&[
        ("UDL__REDIS__URL", "rediss://h:6380"),
        ("UDL__REDIS__CLUSTER", "true"),
        ("UDL__REDIS__TLS_CA_CERT", ca.to_str().unwrap()),
    ]);
    let redis = from_sources(None, vars)
        .unwrap()
        .store::<RedisConfig>()
        .cloned()
        .unwrap();
    assert!(redis.cluster);
    assert_eq!(redis.tls_ca_cert.as_deref(), Some(ca.as_path()));
    std::fs::remove_file(&ca).unwrap();

    let problems = problems_of(
        None,
        &[
            ("UDL__REDIS__URL", "redis://h"),
            ("UDL__REDIS__CLUSTER", "maybe"),
            ("UDL__REDIS__TLS_CA_CERT", "/nonexistent/ca.pem"),
        ],
    );
    assert_eq!(
        problems,
        [
            "redis.cluster: must be true or false",
            "redis.tls_ca_cert: /nonexistent/ca.pem is not a readable file",
            "redis.tls_ca_cert: needs a rediss:// url (TLS)",
        ]
    );
}

#[test]
fn scylla_replication_is_simple_by_default_or_per_data_center() {
    let scylla = |vars: &[(&str, &str)]| {
        let mut all = vec![("UDL__SCYLLA__NODES", "h:9042")];
        all.extend_from_slice(vars);
        from_sources(None, env(&all)).map(|c| c.store::<ScyllaConfig>().cloned().unwrap())
    };
    let simple = scylla(&[]).unwrap();
    assert_eq!(simple.replication, Replication::Simple(1));
    assert_eq!(simple.request_timeout, Duration::from_secs(5));
    let per_dc = scylla(&[("UDL__SCYLLA__REPLICATION_BY_DC", "us-east:3, eu-west:3")]).unwrap();
    assert_eq!(
        per_dc.replication,
        Replication::PerDataCenter(vec![("us-east".into(), 3), ("eu-west".into(), 3)])
    );
    let problems = problems_of(
        None,
        &[
            ("UDL__SCYLLA__NODES", "h:9042"),
            ("UDL__SCYLLA__REPLICATION_FACTOR", "3"),
            ("UDL__SCYLLA__REPLICATION_BY_DC", "dc1:3, 'x':0"),
        ],
    );
    assert_eq!(
        problems,
        [
            "scylla.replication_by_dc: set either replication_factor or replication_by_dc, not both",
            "scylla.replication_by_dc: \"'x':0\" is not datacenter:replicas (1-15)",
        ]
    );
}

#[test]
fn serve_defaults_to_localhost_8080_and_takes_the_env_override() {
    let config = from_sources(None, Vec::<(String, String)>::new()).unwrap();
    assert_eq!(config.serve.addr.to_string(), "127.0.0.1:8080");
    let config = from_sources(
        None,
        [("UDL__SERVE__ADDR".to_owned(), "0.0.0.0:9100".to_owned())],
    )
    .unwrap();
    assert_eq!(config.serve.addr.to_string(), "0.0.0.0:9100");
}

#[test]
fn serve_addr_that_is_not_an_address_is_refused_by_key() {
    let err = from_sources(
        Some(("udl.toml", "[serve]\naddr = \"localhost\"\n")),
        Vec::<(String, String)>::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("serve.addr"), "{err}");
}

#[test]
fn scylla_address_map_and_spool_dir_are_read_and_bad_pairs_refused() {
    let env = |map: &str| {
        [
            ("UDL__SCYLLA__NODES", "127.0.0.1:9042"),
            ("UDL__SCYLLA__ADDRESS_MAP", map),
            ("UDL__SCYLLA__SPOOL_DIR", "/var/spool/udl"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    };
    let config = from_sources(None, env("10.0.0.5:9042=127.0.0.1:19042")).unwrap();
    let scylla = config.store::<ScyllaConfig>().cloned().unwrap();
    assert_eq!(
        scylla.address_map,
        [(
            "10.0.0.5:9042".parse().unwrap(),
            "127.0.0.1:19042".parse().unwrap()
        )]
    );
    assert_eq!(
        scylla.spool_dir.as_deref(),
        Some(std::path::Path::new("/var/spool/udl"))
    );
    let err = from_sources(None, env("db.internal:9042")).unwrap_err();
    assert!(err.to_string().contains("scylla.address_map"), "{err}");
}

#[test]
fn require_tls_refuses_each_plaintext_store_by_name_and_accepts_tls_urls() {
    let plain = [
        ("UDL__SECURITY__ENVIRONMENT", "production"),
        ("UDL__POSTGRES__URL", "postgres://app@db/udl"),
        ("UDL__MONGO__URL", "mongodb://docs/"),
        ("UDL__REDIS__URL", "redis://cache/"),
        ("UDL__SCYLLA__NODES", "10.0.0.5:9042"),
    ];
    let err = from_sources(None, plain.map(|(k, v)| (k.to_owned(), v.to_owned())))
        .unwrap_err()
        .to_string();
    for key in ["postgres.url", "mongo.url", "redis.url", "scylla.tls"] {
        assert!(err.contains(key), "{key} not refused: {err}");
    }
    assert!(err.contains("require_tls"), "{err}");

    let encrypted = [
        ("UDL__SECURITY__ENVIRONMENT", "production"),
        (
            "UDL__POSTGRES__URL",
            "postgres://app@db/udl?sslmode=verify-full",
        ),
        ("UDL__MONGO__URL", "mongodb://docs/?tls=true"),
        ("UDL__REDIS__URL", "rediss://cache/"),
        ("UDL__SCYLLA__NODES", "10.0.0.5:9042"),
        ("UDL__SCYLLA__TLS", "true"),
    ];
    let config = from_sources(None, encrypted.map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap();
    assert!(config.security.require_tls);

    let development = [("UDL__REDIS__URL", "redis://127.0.0.1/")];
    let config =
        from_sources(None, development.map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap();
    assert!(
        !config.security.require_tls,
        "off by default in development"
    );
}

#[test]
fn privacy_takes_the_key_ring_from_a_file_needs_postgres_and_never_prints_it() {
    let dir = std::env::temp_dir().join(format!("udl-ring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ring = dir.join("ring");
    std::fs::write(&ring, "1:ZmFrZS1rZXktZmFrZS1rZXktZmFrZS1rZXktMDAwMA==\n").unwrap();
    let config = from_sources(
        None,
        env(&[
            ("UDL__POSTGRES__URL", "postgres://localhost/db"),
            ("UDL__PRIVACY__KEY_RING_FILE", ring.to_str().unwrap()),
        ]),
    )
    .unwrap();
    let privacy = config.privacy.as_ref().unwrap();
    assert!(privacy.key_ring.expose().starts_with("1:ZmFr"));
    assert!(!config.to_string().contains("ZmFr"), "{config}");
    assert!(!format!("{config:?}").contains("ZmFr"));

    let problems = problems_of(None, &[("UDL__PRIVACY__KEY_RING", "1:ZmFr")]);
    assert!(
        problems.iter().any(|p| p.starts_with("privacy:")),
        "{problems:?}"
    );
    assert!(problems.iter().all(|p| !p.contains("ZmFr")), "{problems:?}");
    let problems = problems_of(
        None,
        &[
            ("UDL__POSTGRES__URL", "postgres://h/db"),
            ("UDL__PRIVACY__SURPRISE", "1"),
        ],
    );
    assert!(
        problems.iter().any(|p| p.starts_with("privacy.key_ring:")),
        "{problems:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_audit_journal_is_off_unless_given_an_absolute_directory_and_has_bounds() {
    let base = [
        ("UDL__POSTGRES__URL", "postgres://localhost/db"),
        (
            "UDL__PRIVACY__KEY_RING",
            "1:ZmFrZS1rZXktZmFrZS1rZXktZmFrZS1rZXktMDAwMA==",
        ),
    ];
    let config = from_sources(None, env(&base)).unwrap();
    let privacy = config.privacy.as_ref().unwrap();
    assert_eq!(privacy.audit_journal_dir, None);
    assert_eq!(
        (privacy.audit_max_unshipped, privacy.audit_max_unshipped_age),
        (100_000, std::time::Duration::from_secs(600))
    );

    let mut journaled = base.to_vec();
    journaled.extend([
        ("UDL__PRIVACY__AUDIT_JOURNAL_DIR", "/var/lib/udl/audit"),
        ("UDL__PRIVACY__AUDIT_MAX_UNSHIPPED", "5000"),
        ("UDL__PRIVACY__AUDIT_MAX_UNSHIPPED_AGE", "90s"),
    ]);
    let config = from_sources(None, env(&journaled)).unwrap();
    let privacy = config.privacy.as_ref().unwrap();
    assert_eq!(
        privacy.audit_journal_dir.as_deref(),
        Some(std::path::Path::new("/var/lib/udl/audit"))
    );
    assert_eq!(
        (privacy.audit_max_unshipped, privacy.audit_max_unshipped_age),
        (5000, std::time::Duration::from_secs(90))
    );
    assert!(
        config
            .to_string()
            .contains("audit_journal_dir = \"/var/lib/udl/audit\""),
        "{config}"
    );

    let mut bad = base.to_vec();
    bad.extend([
        ("UDL__PRIVACY__AUDIT_JOURNAL_DIR", "relative/audit"),
        ("UDL__PRIVACY__AUDIT_MAX_UNSHIPPED", "0"),
    ]);
    let problems = problems_of(None, &bad);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("privacy.audit_journal_dir:") && p.contains("absolute")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("privacy.audit_max_unshipped:")),
        "{problems:?}"
    );
}

#[test]
fn the_vector_index_dir_is_off_unless_given_an_absolute_directory() {
    let base = [("UDL__MONGO__URL", "mongodb://localhost/")];
    let config = from_sources(None, env(&base)).unwrap();
    assert_eq!(
        config.store::<MongoConfig>().unwrap().vector_index_dir,
        None
    );

    let mut saved = base.to_vec();
    saved.push(("UDL__MONGO__VECTOR_INDEX_DIR", "/var/lib/udl/vectors"));
    let config = from_sources(None, env(&saved)).unwrap();
    let mongo = config.store::<MongoConfig>().unwrap();
    assert_eq!(
        mongo.vector_index_dir.as_deref(),
        Some(std::path::Path::new("/var/lib/udl/vectors"))
    );
    assert!(
        config
            .to_string()
            .contains("vector_index_dir = \"/var/lib/udl/vectors\""),
        "{config}"
    );

    let mut relative = base.to_vec();
    relative.push(("UDL__MONGO__VECTOR_INDEX_DIR", "vectors"));
    assert_eq!(
        problems_of(None, &relative),
        ["mongo.vector_index_dir: must be an absolute path"]
    );
}

#[test]
fn the_vector_scan_limit_defaults_to_the_scan_limit_and_is_bounded() {
    let base = [("UDL__MONGO__URL", "mongodb://localhost/")];
    let config = from_sources(None, env(&base)).unwrap();
    assert_eq!(
        config.store::<MongoConfig>().unwrap().vector_scan_limit,
        udl_mongo::SCAN_LIMIT
    );

    let mut graphs = base.to_vec();
    graphs.push(("UDL__MONGO__VECTOR_SCAN_LIMIT", "0"));
    let config = from_sources(None, env(&graphs)).unwrap();
    assert_eq!(config.store::<MongoConfig>().unwrap().vector_scan_limit, 0);
    assert!(
        config.to_string().contains("vector_scan_limit = 0"),
        "{config}"
    );

    let mut negative = base.to_vec();
    negative.push(("UDL__MONGO__VECTOR_SCAN_LIMIT", "-5"));
    assert_eq!(
        problems_of(None, &negative).len(),
        1,
        "a negative limit is refused"
    );
}

#[test]
fn retention_is_declared_once_per_class_with_the_briefs_defaults() {
    let c = from_sources(None, env(&[("UDL__RETENTION__CHAT_ARCHIVE", "30d")])).unwrap();
    assert_eq!(c.retention.phi_access_log, SIX_YEARS);
    assert_eq!(c.retention.analytics, THIRTEEN_MONTHS);
    assert_eq!(
        c.retention.chat_archive,
        Some(Duration::from_secs(30 * 86_400))
    );
    assert!(c.to_string().contains("chat_archive = \"30days\""));
    let problems = problems_of(
        Some("[scylla]\nnodes = [\"h:9042\"]\nanalytics_ttl = \"7d\"\n[retention]\nphi_access_log = \"1y\"\nanalytics = \"30y\"\nsurprise = \"1d\"\n"),
        &[],
    );
    let joined = problems.join("\n");
    for expected in [
        "scylla.analytics_ttl: moved: set retention.analytics",
        "retention.phi_access_log: must be at least 6 years",
        "retention.analytics: must be whole seconds, at most 20 years",
        "retention.surprise: unknown key",
    ] {
        assert!(joined.contains(expected), "{expected} not in:\n{joined}");
    }
}

#[test]
fn job_schedules_are_read_from_jobs_sections() {
    let c = from_sources(
        None,
        env(&[("UDL__JOBS__MEDIA_RIGHTS_PRUNE__SCHEDULE", "0 2 * * *")]),
    )
    .unwrap();
    assert_eq!(
        c.jobs.job("media_rights_prune").unwrap().schedule,
        "0 2 * * *"
    );
    assert_eq!(
        c.jobs.job("retention_purge").unwrap().schedule,
        "15 3 * * *"
    );
    assert!(problems_of(None, &[("UDL__JOBS__SCHEDULER", "sometimes")])
        .join("\n")
        .contains("jobs.scheduler"));
}

#[test]
fn the_gateways_sessions_live_as_long_as_retention_sessions_says() {
    let toml = "[postgres]\nurl = \"postgres://u@h/db\"\n[redis]\nurl = \"redis://h\"\n\
                [privacy]\nkey_ring = \"1:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=\"\n\
                [retention]\nsessions = \"5m\"\n\
                [gateway]\n[gateway.jwt]\nkeys_file = \"/fake/jwks.json\"\nissuer = \"fake\"\n\
                audience = \"udl\"\n[gateway.services.rag]\n\
                token = \"fake-token-0000000000000000000000000001\"\nentities = [\"*\"]\n\
                operations = \"read\"\npurposes = [\"treatment\"]\nroles = [\"clinician\"]\n";
    let c = from_sources(Some(("udl.toml", toml)), vec![]).unwrap();
    assert_eq!(c.gateway.unwrap().session_idle, Duration::from_secs(5 * 60));
    let moved = problems_of(
        Some(&toml.replace("[gateway]\n", "[gateway]\nsession_idle = \"1h\"\n")),
        &[],
    );
    assert!(
        moved
            .join("\n")
            .contains("gateway.session_idle: moved: set retention.sessions"),
        "{moved:?}"
    );
}
