//! Where the local test servers are. Each address can be overridden by the same environment
//! variable udl's config reads; defaults match `scripts/services up`.

/// PostgreSQL URL (`UDL__POSTGRES__URL`). Plain TCP by default: the local server also
/// offers TLS, which the TLS tests ask for explicitly.
pub fn postgres_url() -> String {
    var_or(
        "UDL__POSTGRES__URL",
        "postgres://postgres@127.0.0.1:5432/udl?sslmode=disable",
    )
}

/// MongoDB URL (`UDL__MONGO__URL`): a one-member replica set of the real server.
pub fn mongo_url() -> String {
    var_or(
        "UDL__MONGO__URL",
        "mongodb://127.0.0.1:27017/?replicaSet=rs0",
    )
}

/// FerretDB URL (`UDL_TEST_FERRETDB_URL`), the second MongoDB target.
pub fn ferretdb_url() -> String {
    var_or("UDL_TEST_FERRETDB_URL", "mongodb://127.0.0.1:27027/")
}

/// Redis URL (`UDL__REDIS__URL`).
pub fn redis_url() -> String {
    var_or("UDL__REDIS__URL", "redis://127.0.0.1:6379/")
}

/// TLS-only Redis URL (`UDL_TEST_REDIS_TLS_URL`).
pub fn redis_tls_url() -> String {
    var_or("UDL_TEST_REDIS_TLS_URL", "rediss://127.0.0.1:6380/")
}

/// The CA certificate that signed the TLS Redis server's certificate
/// (`UDL_TEST_TLS_CA`; `scripts/services` writes it to `.local/tls/ca.crt`).
pub fn test_ca_cert() -> std::path::PathBuf {
    std::env::var_os("UDL_TEST_TLS_CA")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local/tls/ca.crt")
        })
}

/// A seed node of the three-node Redis Cluster (`UDL_TEST_REDIS_CLUSTER_URL`).
pub fn redis_cluster_url() -> String {
    var_or("UDL_TEST_REDIS_CLUSTER_URL", "redis://127.0.0.1:7101/")
}

/// CQL contact point (`UDL__SCYLLA__NODES`, first entry).
pub fn scylla_node() -> String {
    var_or("UDL__SCYLLA__NODES", "127.0.0.1:9042")
        .split(',')
        .next()
        .unwrap_or("127.0.0.1:9042")
        .trim()
        .to_owned()
}

/// NATS URL (`UDL_NATS_URL`).
pub fn nats_url() -> String {
    var_or("UDL_NATS_URL", "nats://127.0.0.1:4222")
}

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Fails the test with a message saying how to start the servers.
#[track_caller]
pub fn unreachable(server: &str, address: &str, error: &dyn std::fmt::Display) -> ! {
    panic!(
        "{server} is not reachable at {address}: {error}\n\
         Start the local test servers with `scripts/services up` \
         (`scripts/services status` shows which one is down)."
    )
}

/// A fresh name for a per-test namespace (schema, database, keyspace, key prefix).
pub fn unique_namespace(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}
