//! Where the demo keeps its data: a namespace of its own in every store (`udl_demo`), emptied
//! at the start of each run and left in place afterwards for a look around, so a demo never
//! touches anything else on the servers it is pointed at.

use std::path::Path;

use base64::Engine as _;
use udl::config::ConfigError;
use udl::{DataLayer, Error, ErrorKind, Result, UdlConfig};

/// The demo's schema, database, keyspace and Redis key prefix.
pub const NAMESPACE: &str = "udl_demo";

/// The stores the demo needs, with the variable that configures each.
const NEEDED: &[(&str, &str)] = &[
    ("postgres", "UDL__POSTGRES__URL"),
    ("mongo", "UDL__MONGO__URL"),
    ("redis", "UDL__REDIS__URL"),
    ("scylla", "UDL__SCYLLA__NODES"),
];

/// The demo's configuration: the stores of `config_file` and the environment, in the demo's
/// namespace, with `[privacy]` (an ephemeral key ring when none is configured) and a
/// `[gateway]` trusting `jwks_file` and the service `service_token`.
pub fn demo_config(
    config_file: Option<&Path>,
    dir: &Path,
    jwks_file: &Path,
    service_token: &str,
) -> Result<UdlConfig> {
    let file = match config_file {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("cannot read the config file: {}", e.kind()),
                )
            })?,
        )),
        None => None,
    };
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with(udl::config::ENV_PREFIX) && !k.starts_with("UDL__GATEWAY"))
        .collect();
    let has_key_ring = env
        .iter()
        .any(|(k, _)| k.starts_with("UDL__PRIVACY__KEY_RING"))
        || file
            .as_ref()
            .is_some_and(|(_, text)| text.contains("key_ring"));
    let set = |env: &mut Vec<(String, String)>, key: &str, value: String| {
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value));
    };
    set(&mut env, "UDL__POSTGRES__SCHEMA", NAMESPACE.into());
    set(&mut env, "UDL__MONGO__DATABASE", NAMESPACE.into());
    set(&mut env, "UDL__SCYLLA__KEYSPACE", NAMESPACE.into());
    set(&mut env, "UDL__SCYLLA__CONSISTENCY", "one".into());
    set(
        &mut env,
        "UDL__SCYLLA__SPOOL_DIR",
        dir.join("spool").display().to_string(),
    );
    set(&mut env, "UDL__REDIS__KEY_PREFIX", format!("{NAMESPACE}:"));
    if !has_key_ring {
        set(&mut env, "UDL__PRIVACY__KEY_RING", ephemeral_key_ring());
    }
    let gateway = [
        (
            "UDL__GATEWAY__JWT__KEYS_FILE",
            jwks_file.display().to_string(),
        ),
        ("UDL__GATEWAY__JWT__ISSUER", super::ISSUER.to_owned()),
        ("UDL__GATEWAY__JWT__AUDIENCE", super::AUDIENCE.to_owned()),
        (
            "UDL__GATEWAY__SERVICES__DEMO_APP__TOKEN",
            service_token.to_owned(),
        ),
        ("UDL__GATEWAY__SERVICES__DEMO_APP__ENTITIES", "*".to_owned()),
        (
            "UDL__GATEWAY__SERVICES__DEMO_APP__OPERATIONS",
            udl::config::GATEWAY_OPERATIONS.join(","),
        ),
        (
            "UDL__GATEWAY__SERVICES__DEMO_APP__PURPOSES",
            "treatment,patient_request,emergency,operations".to_owned(),
        ),
        (
            "UDL__GATEWAY__SERVICES__DEMO_APP__ROLES",
            "patient,clinician".to_owned(),
        ),
    ];
    env.extend(gateway.map(|(k, v)| (k.to_owned(), v)));
    let config =
        udl::config::from_sources(file.as_ref().map(|(n, t)| (n.as_str(), t.as_str())), env)
            .map_err(|e: ConfigError| Error::new(ErrorKind::Config, e.to_string()))?;
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(store, _)| !config.has_store(store))
        .map(|(_, var)| *var)
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "udl demo needs all four stores; set {} (scripts/services up && eval \"$(scripts/services env)\")",
                missing.join(", ")
            ),
        ));
    }
    Ok(config)
}

/// A random key ring for this run only: the demo's namespace is emptied at every start, so
/// nothing sealed under it outlives it.
fn ephemeral_key_ring() -> String {
    let key = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Empties the demo's namespace in every store, then migrates it.
pub async fn fresh(config: &UdlConfig) -> Result<()> {
    let data = DataLayer::connect_stores(config).await?;
    crate::commands::closing(data, async |data| {
        let pg = data.postgres()?;
        let drop_schema = format!("DROP SCHEMA IF EXISTS \"{NAMESPACE}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop_schema))
            .execute(pg.pool())
            .await
            .map_err(|e| udl::postgres::classify(&e, "demo reset"))?;
        data.mongo()?.database().drop().await.map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                "MongoDB: cannot drop the demo database",
            )
        })?;
        let cql = format!("DROP KEYSPACE IF EXISTS \"{NAMESPACE}\"");
        data.scylla()?
            .session()
            .get_session()
            .query_unpaged(cql, ())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Unavailable,
                    "ScyllaDB: cannot drop the demo keyspace",
                )
            })?;
        data.redis()?
            .connection()
            .unlink_matching(&format!("{NAMESPACE}:*"))
            .await
            .map_err(|e| udl::redis::classify(&e, "demo reset"))?;
        data.migrate().await.map(drop)
    })
    .await
}
