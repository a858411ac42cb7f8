//! The server side of capture: the replication connection's target, the publication (only
//! the tables of registered entities, never `FOR ALL TABLES`), the logical slot, the
//! leader's lease, and the status the relay reports.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use udl_core::{Error, ErrorKind, Result};
use udl_postgres::{PgStore, PostgresConfig};

use crate::pgoutput::{Relation, RelationColumn};

/// How long dropping a slot waits for the relay that streamed it to be gone.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Where the replication connection goes, read from `postgres.url`.
#[derive(Clone)]
pub struct ReplicationTarget {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User (needs the `REPLICATION` attribute).
    pub user: String,
    /// Password (empty for trust or peer authentication).
    pub password: String,
    /// Database.
    pub database: String,
}

impl std::fmt::Debug for ReplicationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

fn config_error(message: &str) -> Error {
    Error::new(ErrorKind::Config, message.to_owned())
}

impl ReplicationTarget {
    /// The target of `config`'s URL. The replication client in use here cannot speak TLS
    /// on this build's one crypto provider, so a URL that asks for TLS is refused rather
    /// than silently connected in the clear.
    pub fn from_config(config: &PostgresConfig) -> Result<Self> {
        let url = config.url.expose_url();
        let tls = url.query_pairs().any(|(k, v)| {
            k == "sslmode" && ["require", "verify-ca", "verify-full"].contains(&v.as_ref())
        });
        if tls {
            return Err(config_error(
                "change data capture cannot use TLS to PostgreSQL yet: its replication connection needs sslmode=disable or prefer on a private network",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| config_error("postgres.url names no host"))?
            .to_owned();
        let database = url.path().trim_start_matches('/');
        Ok(ReplicationTarget {
            host,
            port: url.port().unwrap_or(5432),
            user: if url.username().is_empty() {
                "postgres".to_owned()
            } else {
                url.username().to_owned()
            },
            password: url.password().unwrap_or("").to_owned(),
            database: if database.is_empty() {
                "postgres".to_owned()
            } else {
                database.to_owned()
            },
        })
    }
}

fn pg_error(operation: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| udl_postgres::classify(&e, operation)
}

/// `name` when it is a plain lower-case identifier (what slot and publication names must be),
/// so it can be written into DDL.
pub fn checked_name(name: &str) -> Result<&str> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(name)
    } else {
        Err(config_error(
            "slot and publication names take lower-case letters, digits and underscores (at most 63)",
        ))
    }
}

/// `"schema"."table"`.
fn qualified(schema: &str, table: &str) -> String {
    format!("\"{schema}\".\"{table}\"")
}

/// The columns of `table` (in the store's schema) as the catalog describes them, in order;
/// `None` when there is no such table.
pub async fn table_relation(pg: &PgStore, table: &str) -> Result<Option<Relation>> {
    let columns: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.attname::text, a.atttypid::bigint FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
    )
    .bind(pg.schema())
    .bind(table)
    .fetch_all(pg.pool())
    .await
    .map_err(|e| udl_postgres::classify(&e, "cdc.table"))?;
    if columns.is_empty() {
        return Ok(None);
    }
    Ok(Some(Relation {
        id: 0,
        namespace: pg.schema().to_owned(),
        name: table.to_owned(),
        columns: columns
            .into_iter()
            .map(|(name, oid)| RelationColumn {
                name,
                type_oid: oid as u32,
                key: false,
            })
            .collect(),
    }))
}

/// Of `tables`, those that exist in `pg`'s schema.
pub async fn existing_tables(pg: &PgStore, tables: &[&'static str]) -> Result<Vec<&'static str>> {
    let names: Vec<&str> = tables.to_vec();
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)",
    )
    .bind(pg.schema())
    .bind(&names)
    .fetch_all(pg.pool())
    .await
    .map_err(pg_error("cdc.tables"))?;
    Ok(tables
        .iter()
        .copied()
        .filter(|t| found.iter().any(|f| f == t))
        .collect())
}

/// Makes `publication` list exactly `tables` (of `pg`'s schema), publishing inserts,
/// updates and deletes.
pub async fn ensure_publication(pg: &PgStore, publication: &str, tables: &[&str]) -> Result<()> {
    if tables.is_empty() {
        return Err(config_error(
            "change data capture has no table to capture: no registered PostgreSQL entity has a table yet (run the migrations)",
        ));
    }
    let list: Vec<String> = tables.iter().map(|t| qualified(pg.schema(), t)).collect();
    let list = list.join(", ");
    let publication = checked_name(publication)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(publication)
            .fetch_one(pg.pool())
            .await
            .map_err(pg_error("cdc.publication"))?;
    let sql = if exists {
        format!("ALTER PUBLICATION \"{publication}\" SET TABLE {list}")
    } else {
        format!(
            "CREATE PUBLICATION \"{publication}\" FOR TABLE {list} WITH (publish = 'insert, update, delete')"
        )
    };
    // Names are checked identifiers: the schema by the configuration, tables by their
    // declarations, the publication above.
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(pg.pool())
        .await
        .map_err(pg_error("cdc.publication"))?;
    Ok(())
}

/// Creates the logical slot `slot` (plugin `pgoutput`) unless it exists.
pub async fn ensure_slot(pg: &PgStore, slot: &str) -> Result<()> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
    )
    .bind(slot)
    .fetch_one(pg.pool())
    .await
    .map_err(pg_error("cdc.slot"))?;
    if !exists {
        sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
            .bind(slot)
            .execute(pg.pool())
            .await
            .map_err(pg_error("cdc.slot"))?;
    }
    Ok(())
}

/// Drops `slot` and `publication` (once no relay streams): capture stops holding WAL.
pub async fn drop_capture(pg: &PgStore, slot: &str, publication: &str) -> Result<()> {
    wait_until_released(pg, slot).await?;
    sqlx::query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(slot)
    .execute(pg.pool())
    .await
    .map_err(pg_error("cdc.drop"))?;
    let publication = checked_name(publication)?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP PUBLICATION IF EXISTS \"{publication}\""
    )))
    .execute(pg.pool())
    .await
    .map_err(pg_error("cdc.drop"))?;
    Ok(())
}

/// Waits (a few seconds at most) for a relay that just stopped or died to leave `slot`: its
/// walsender ends a moment after the client goes, and an active slot cannot be dropped.
async fn wait_until_released(pg: &PgStore, slot: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
    loop {
        let active: Option<bool> =
            sqlx::query_scalar("SELECT active FROM pg_replication_slots WHERE slot_name = $1")
                .bind(slot)
                .fetch_optional(pg.pool())
                .await
                .map_err(pg_error("cdc.drop"))?;
        if active != Some(true) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("replication slot {slot} is still streaming to a relay; stop it first"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The leader's lease on `slot`: a session advisory lock held by a connection of its own,
/// released by the server when the holder's session ends (its process died included).
pub async fn try_lease(pg: &PgStore, slot: &str) -> Result<Option<PgConnection>> {
    let mut conn = pg
        .pool()
        .acquire()
        .await
        .map_err(pg_error("cdc.lease"))?
        .detach();
    let got: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('udl.cdc'), hashtext($1))")
            .bind(slot)
            .fetch_one(&mut conn)
            .await
            .map_err(pg_error("cdc.lease"))?;
    Ok(got.then_some(conn))
}

/// Writes a heartbeat into the WAL over the lease's connection: an idle slot still sees
/// traffic to acknowledge, and a lost lease shows as an error.
pub async fn heartbeat(lease: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_logical_emit_message(false, 'udl.heartbeat', '')")
        .execute(lease)
        .await
        .map_err(pg_error("cdc.heartbeat"))?;
    Ok(())
}

/// What the leader last reported.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayReport {
    /// `running`, `halted` or `stopped`.
    pub state: String,
    /// Why it halted.
    pub reason: Option<String>,
    /// Process holding the lease (`host:pid`).
    pub holder: String,
    /// Commit time of the newest transaction made durable.
    pub last_commit_at: Option<DateTime<Utc>>,
    /// Age of the oldest commit it held that was not yet durable, when it wrote this.
    pub lag_seconds: Option<f64>,
    /// When it wrote this.
    pub updated_at: DateTime<Utc>,
}

/// What a leader reports about itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Acknowledged up to here.
    pub acked_lsn: u64,
    /// Commit time of the newest durable transaction.
    pub last_commit_at: Option<DateTime<Utc>>,
    /// Age of the oldest commit held and not yet durable.
    pub lag_seconds: f64,
}

/// Records the leader's state for `udl cdc status`.
pub async fn report(
    lease: &mut PgConnection,
    slot: &str,
    holder: &str,
    state: &str,
    reason: Option<&str>,
    progress: Progress,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO udl_cdc_relays (slot, holder, state, reason, acked_lsn, last_commit_at, lag_seconds, updated_at)
         VALUES ($1, $2, $3, $4, $5::text::pg_lsn, $6, $7, now())
         ON CONFLICT (slot) DO UPDATE SET holder = $2, state = $3, reason = $4,
             acked_lsn = GREATEST(udl_cdc_relays.acked_lsn, EXCLUDED.acked_lsn),
             last_commit_at = COALESCE($6, udl_cdc_relays.last_commit_at), lag_seconds = $7,
             updated_at = now()",
    )
    .bind(slot)
    .bind(holder)
    .bind(state)
    .bind(reason)
    .bind(lsn_text(progress.acked_lsn))
    .bind(progress.last_commit_at)
    .bind(progress.lag_seconds)
    .execute(lease)
    .await
    .map_err(pg_error("cdc.report"))?;
    Ok(())
}

/// An LSN as PostgreSQL writes it (`16/B374D848`).
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// The slot's and relay's figures, for `udl cdc status`.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureStatus {
    /// Slot name.
    pub slot: String,
    /// Whether the slot exists.
    pub exists: bool,
    /// Whether a relay streams it now.
    pub active: bool,
    /// Position up to which changes are durable in the sinks.
    pub confirmed_lsn: Option<String>,
    /// WAL written since that position.
    pub lag_bytes: Option<i64>,
    /// `lost`, `unreserved`, ... when PostgreSQL had to give up WAL the slot needed.
    pub wal_status: Option<String>,
    /// The leader's last report.
    pub relay: Option<RelayReport>,
}

/// Reads the status of `slot`.
pub async fn status(pg: &PgStore, slot: &str) -> Result<CaptureStatus> {
    type SlotRow = (bool, Option<String>, Option<i64>, Option<String>);
    let row: Option<SlotRow> = sqlx::query_as(
        "SELECT active, confirmed_flush_lsn::text,
                (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, wal_status
         FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(slot)
    .fetch_optional(pg.pool())
    .await
    .map_err(pg_error("cdc.status"))?;
    type ReportRow = (
        String,
        Option<String>,
        String,
        Option<DateTime<Utc>>,
        Option<f64>,
        DateTime<Utc>,
    );
    let relay: Option<ReportRow> = sqlx::query_as(
        "SELECT state, reason, holder, last_commit_at, lag_seconds, updated_at
         FROM udl_cdc_relays WHERE slot = $1",
    )
    .bind(slot)
    .fetch_optional(pg.pool())
    .await
    .map_err(pg_error("cdc.status"))?;
    let (exists, active, confirmed_lsn, lag_bytes, wal_status) = match row {
        Some((active, lsn, lag, wal)) => (true, active, lsn, lag, wal),
        None => (false, false, None, None, None),
    };
    Ok(CaptureStatus {
        slot: slot.to_owned(),
        exists,
        active,
        confirmed_lsn,
        lag_bytes,
        wal_status,
        relay: relay.map(
            |(state, reason, holder, last_commit_at, lag_seconds, updated_at)| RelayReport {
                state,
                reason,
                holder,
                last_commit_at,
                lag_seconds,
                updated_at,
            },
        ),
    })
}
