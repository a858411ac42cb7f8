//! Snapshots (batch sync): a table's existing rows copied to the sinks through the relay's
//! own sanitizing path while streaming goes on, by DBLog's watermark algorithm (as Debezium's
//! incremental snapshots do).
//!
//! A snapshot is requested as a row of `udl_cdc_snapshots`; the relay leading the slot takes
//! the oldest unfinished one and reads it in primary-key chunks. For each chunk it writes a
//! low watermark into the WAL, reads the chunk, and writes a high watermark. While the stream
//! is between the two, every change to a row of the chunk drops that row from it: the stream
//! carries a state at least as new. At the high watermark the rows left become
//! `ce.<entity>.snapshot` events of the watermark's transaction, so they sit in commit order
//! after everything the read saw and before everything it did not. A chunk is recorded as
//! done only once its events are durable in every sink, so after a crash the snapshot goes
//! on from its last recorded chunk (a chunk cut off is read again: its rows may reach a sink
//! twice, each copy true when it was read).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sqlx::Row as _;
use udl_core::{EntityMeta, Error, ErrorKind, Filter, Result, SortKey, StoreKind, Value};
use udl_postgres::sql::{ident, Sql};
use udl_postgres::PgStore;

use crate::pgoutput::{Column, Tuple};
use crate::plan::{treatment_of, EntityPlan, Treatment};
use crate::sanitize::BoundTable;
use crate::slot;

/// The prefix of the watermark messages, before the schema.
pub const SNAPSHOT_PREFIX: &str = "udl.snapshot";

/// The prefix of the watermarks of the deployment in `schema` (every slot of the database
/// reads every logical message; each relay takes only its own schema's).
pub fn snapshot_prefix(schema: &str) -> String {
    format!("{SNAPSHOT_PREFIX}:{schema}")
}

/// Rows read per chunk unless the request says otherwise.
pub const DEFAULT_CHUNK_ROWS: u32 = 4096;

/// The most rows a chunk may have (a chunk is held in memory until its high watermark).
pub const MAX_CHUNK_ROWS: u32 = 50_000;

/// A comparison a condition makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `=`
    #[serde(rename = "=")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Lte,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Gte,
}

/// The operators in the order they are looked for (two-character ones first).
const OPS: [(&str, Op); 6] = [
    ("<=", Op::Lte),
    (">=", Op::Gte),
    ("!=", Op::Ne),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
];

/// One condition on the rows a snapshot copies: `field op value`, on a field whose values
/// leave the store as they are (public or internal, not `no_export`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// Field.
    pub field: String,
    /// Comparison.
    pub op: Op,
    /// Value, as JSON of the field's kind.
    pub value: Json,
}

impl FromStr for Condition {
    type Err = String;

    /// `status=active`, `minutes>=30`, `ends_at<2026-01-01T00:00:00Z`: the value is read as
    /// JSON when it is JSON, as text otherwise.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let (at, symbol, op) = OPS
            .iter()
            .filter_map(|(symbol, op)| text.find(symbol).map(|at| (at, *symbol, *op)))
            .min_by_key(|(at, symbol, _)| (*at, std::cmp::Reverse(symbol.len())))
            .ok_or("expected FIELD=VALUE (or !=, <, <=, >, >=)")?;
        let field = text[..at].trim();
        if field.is_empty() {
            return Err("the condition names no field".into());
        }
        let raw = text[at + symbol.len()..].trim();
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Json::String(raw.to_owned()));
        Ok(Condition {
            field: field.to_owned(),
            op,
            value,
        })
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// The filter `conditions` make on `entity`, each checked: a field that exists and whose
/// values leave the store (so a condition cannot probe what a declaration keeps back), and a
/// value of its kind.
pub fn filter_of(entity: &EntityMeta, conditions: &[Condition]) -> Result<Filter> {
    let mut parts = Vec::with_capacity(conditions.len());
    for c in conditions {
        let field = entity.field(&c.field).ok_or_else(|| {
            invalid(format!(
                "entity {} has no field {:?} to select on",
                entity.name, c.field
            ))
        })?;
        if treatment_of(field) != Treatment::Pass {
            return Err(invalid(format!(
                "field {} of {} does not leave the store as it is, so a snapshot cannot select on it",
                field.name, entity.name
            )));
        }
        let value = Value::from_json(field.kind, &c.value)
            .map_err(|e| invalid(format!("condition on {}: {}", field.name, e.message())))?;
        let name = field.name.to_owned();
        parts.push(match c.op {
            Op::Eq => Filter::Eq(name, value),
            Op::Ne => Filter::Ne(name, value),
            Op::Lt => Filter::Lt(name, value),
            Op::Lte => Filter::Lte(name, value),
            Op::Gt => Filter::Gt(name, value),
            Op::Gte => Filter::Gte(name, value),
        });
    }
    Ok(Filter::And(parts))
}

fn store_error(e: sqlx::Error) -> Error {
    udl_postgres::classify(&e, "cdc.snapshot")
}

/// Asks the relay of `slot` for a snapshot of `entity` (a registered PostgreSQL entity),
/// of the rows `conditions` select, `chunk_rows` at a time. Returns its id. Checks everything
/// first: the entity's declaration, the conditions, the chunk size.
pub async fn request(
    pg: &PgStore,
    slot: &str,
    entity: &'static EntityMeta,
    conditions: &[Condition],
    chunk_rows: u32,
) -> Result<i64> {
    if entity.store != Some(StoreKind::POSTGRES) {
        return Err(invalid(format!(
            "{} does not live in PostgreSQL: only captured tables are snapshotted",
            entity.name
        )));
    }
    if !(1..=MAX_CHUNK_ROWS).contains(&chunk_rows) {
        return Err(invalid(format!(
            "a chunk is 1 to {MAX_CHUNK_ROWS} rows, not {chunk_rows}"
        )));
    }
    EntityPlan::new(entity).map_err(invalid)?;
    let filter = filter_of(entity, conditions)?;
    let mut count = Sql::new(format!(
        "SELECT count(*) FROM {}.{} WHERE ",
        ident(pg.schema()),
        ident(entity.name)
    ));
    count.filter(entity, &filter)?;
    let total: i64 = sqlx::query_scalar_with(
        sqlx::AssertSqlSafe(count.text),
        udl_postgres::values::arguments(count.params)?,
    )
    .fetch_one(pg.pool())
    .await
    .map_err(store_error)?;
    let conditions = serde_json::to_value(conditions).expect("conditions are plain data");
    sqlx::query_scalar(
        "INSERT INTO udl_cdc_snapshots (slot, entity, conditions, chunk_rows, total_rows)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(slot)
    .bind(entity.name)
    .bind(conditions)
    .bind(chunk_rows as i32)
    .bind(total)
    .fetch_one(pg.pool())
    .await
    .map_err(store_error)
}

/// Where a snapshot stands.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotProgress {
    /// Its id.
    pub id: i64,
    /// The entity (table) copied.
    pub entity: String,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Rows the conditions selected when it was requested.
    pub total_rows: i64,
    /// Rows read so far, in chunks durable in every sink.
    pub rows_read: i64,
    /// Of those, sent as snapshot events (the others changed while their chunk was read,
    /// and the stream carried them).
    pub rows_sent: i64,
    /// Chunks done.
    pub chunks: i64,
    /// When the relay took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl SnapshotProgress {
    /// Whether it has ended, done or failed.
    pub fn ended(&self) -> bool {
        self.state == "done" || self.state == "failed"
    }
}

/// A row of `udl_cdc_snapshots` as [`PROGRESS`] reads it.
type ProgressRow = (
    i64,
    String,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// What [`SnapshotProgress`] is read from.
const PROGRESS: &str = "SELECT id, entity, state, reason, total_rows, rows_read, rows_sent, chunks,
    started_at, finished_at FROM udl_cdc_snapshots";

impl From<ProgressRow> for SnapshotProgress {
    fn from(row: ProgressRow) -> Self {
        let (id, entity, state, reason, total_rows, rows_read, rows_sent, chunks, started, ended) =
            row;
        SnapshotProgress {
            id,
            entity,
            state,
            reason,
            total_rows,
            rows_read,
            rows_sent,
            chunks,
            started_at: started,
            finished_at: ended,
        }
    }
}

/// The snapshots of `slot` not ended yet, oldest first.
pub async fn unfinished(pg: &PgStore, slot: &str) -> Result<Vec<SnapshotProgress>> {
    let rows: Vec<ProgressRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PROGRESS} WHERE slot = $1 AND state IN ('pending', 'running') ORDER BY id"
    )))
    .bind(slot)
    .fetch_all(pg.pool())
    .await
    .map_err(store_error)?;
    Ok(rows.into_iter().map(SnapshotProgress::from).collect())
}

/// Where snapshot `id` stands.
pub async fn progress(pg: &PgStore, id: i64) -> Result<SnapshotProgress> {
    let row: Option<ProgressRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{PROGRESS} WHERE id = $1")))
            .bind(id)
            .fetch_optional(pg.pool())
            .await
            .map_err(store_error)?;
    row.map(SnapshotProgress::from)
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no snapshot {id}")))
}

/// A watermark's content.
#[derive(Serialize, Deserialize)]
struct Watermark {
    snapshot: i64,
    /// This reading of the chunk: a chunk read again after a crash has another, so the
    /// marks of the lost reading (replayed from the WAL) match nothing.
    read: String,
    high: bool,
}

/// Where the relay's current snapshot stands.
pub(crate) struct Active {
    /// Its id.
    pub id: i64,
    /// The table as bound to its entity's plan (the chunk's rows are sanitized with it).
    pub table: Arc<BoundTable>,
    filter: Filter,
    columns: String,
    chunk_rows: u32,
    /// The last key read, in memory (the next chunk starts after it).
    last_key: Option<Value>,
}

/// A chunk between its watermarks.
pub(crate) struct Chunk {
    snapshot: i64,
    read: String,
    /// The stream is between the watermarks.
    window_open: bool,
    entity: &'static str,
    rows: Vec<Option<Tuple>>,
    by_key: HashMap<Bytes, usize>,
    done: ChunkDone,
}

/// A chunk whose events are in a transaction, recorded once they are durable.
#[derive(Clone, Debug)]
pub(crate) struct ChunkDone {
    pub snapshot: i64,
    pub rows_read: i64,
    pub rows_sent: i64,
    pub last_key: Option<Json>,
    /// The last chunk: the snapshot is done once it is durable.
    pub finished: bool,
}

/// What a watermark message means for the chunk being read.
pub(crate) enum Mark {
    /// Changes from here on supersede the chunk's rows.
    Low,
    /// The chunk's rows left go out here.
    High,
    /// Not this chunk's (a replay of a reading lost in a crash).
    Foreign,
}

impl Chunk {
    /// What the watermark `content` is to this chunk; a low one opens its window.
    pub fn mark(&mut self, content: &[u8]) -> Mark {
        let Ok(mark) = serde_json::from_slice::<Watermark>(content) else {
            return Mark::Foreign;
        };
        if mark.snapshot != self.snapshot || mark.read != self.read {
            return Mark::Foreign;
        }
        if mark.high {
            Mark::High
        } else {
            self.window_open = true;
            Mark::Low
        }
    }

    /// A change of `tuple` of `table` streamed: inside the window, its row leaves the chunk.
    pub fn supersede(&mut self, table: &BoundTable, tuple: &Tuple) {
        if !self.window_open || table.plan.entity.name != self.entity {
            return;
        }
        let Some(Column::Binary(key)) = table.id_column().and_then(|c| tuple.get(c)) else {
            return;
        };
        if let Some(&at) = self.by_key.get(key) {
            self.rows[at] = None;
        }
    }

    /// The rows left, and the record of the chunk.
    pub fn finish(self) -> (Vec<Tuple>, ChunkDone) {
        let rows: Vec<Tuple> = self.rows.into_iter().flatten().collect();
        let mut done = self.done;
        done.rows_sent = rows.len() as i64;
        (rows, done)
    }
}

/// Writes a watermark into the WAL, in a transaction of its own.
async fn watermark(pg: &PgStore, snapshot: i64, read: &str, high: bool) -> Result<()> {
    let content = serde_json::to_string(&Watermark {
        snapshot,
        read: read.to_owned(),
        high,
    })
    .expect("a watermark is plain data");
    sqlx::query("SELECT pg_logical_emit_message(true, $1, $2)")
        .bind(snapshot_prefix(pg.schema()))
        .bind(content)
        .execute(pg.pool())
        .await
        .map_err(store_error)?;
    Ok(())
}

/// A snapshot's request as stored: id, entity, conditions, chunk rows, last key.
type Requested = (i64, String, Json, i32, Option<Json>);

impl Active {
    /// The oldest unfinished snapshot of `slot` other than `skip` (one whose last chunk is
    /// on its way), made ready to read; one that cannot be read (its entity is unknown here,
    /// its table does not match) is marked failed, with the reason, and the next is taken.
    pub async fn next(
        pg: &PgStore,
        slot: &str,
        plans: &HashMap<&'static str, std::result::Result<Arc<EntityPlan>, String>>,
        skip: Option<i64>,
    ) -> Result<Option<Active>> {
        loop {
            let requested: Option<Requested> = sqlx::query_as(
                "SELECT id, entity, conditions, chunk_rows, last_key FROM udl_cdc_snapshots
                 WHERE slot = $1 AND state IN ('pending', 'running') AND id IS DISTINCT FROM $2
                 ORDER BY id LIMIT 1",
            )
            .bind(slot)
            .bind(skip)
            .fetch_optional(pg.pool())
            .await
            .map_err(store_error)?;
            let Some(requested) = requested else {
                return Ok(None);
            };
            let id = requested.0;
            match Active::prepare(pg, plans, requested).await? {
                Ok(active) => {
                    sqlx::query(
                        "UPDATE udl_cdc_snapshots SET state = 'running',
                         started_at = coalesce(started_at, now()) WHERE id = $1",
                    )
                    .bind(id)
                    .execute(pg.pool())
                    .await
                    .map_err(store_error)?;
                    tracing::info!(snapshot = id, "snapshot started");
                    return Ok(Some(active));
                }
                Err(reason) => fail(pg, id, &reason).await?,
            }
        }
    }

    /// The request made ready to read, or why it cannot be.
    async fn prepare(
        pg: &PgStore,
        plans: &HashMap<&'static str, std::result::Result<Arc<EntityPlan>, String>>,
        (id, entity_name, conditions, chunk_rows, last_key): Requested,
    ) -> Result<std::result::Result<Active, String>> {
        let plan = match plans.get(entity_name.as_str()) {
            Some(Ok(plan)) => Arc::clone(plan),
            Some(Err(why)) => return Ok(Err(why.clone())),
            None => {
                return Ok(Err(format!(
                    "no registered entity claims table {entity_name}"
                )))
            }
        };
        let entity = plan.entity;
        let Some(relation) = slot::table_relation(pg, entity.name).await? else {
            return Ok(Err(format!("table {} does not exist", entity.name)));
        };
        let columns = relation
            .columns
            .iter()
            .map(|c| ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let table = match BoundTable::bind(plan, &relation) {
            Ok(table) => table,
            Err(why) => return Ok(Err(why)),
        };
        let conditions: Vec<Condition> = match serde_json::from_value(conditions) {
            Ok(conditions) => conditions,
            Err(e) => return Ok(Err(format!("the stored conditions do not read: {e}"))),
        };
        let filter = match filter_of(entity, &conditions) {
            Ok(filter) => filter,
            Err(e) => return Ok(Err(e.message().to_owned())),
        };
        let last_key = match last_key {
            None => None,
            Some(json) => match Value::from_json(entity.id().kind, &json) {
                Ok(key) => Some(key),
                Err(e) => {
                    return Ok(Err(format!(
                        "the stored last key does not read: {}",
                        e.message()
                    )))
                }
            },
        };
        Ok(Ok(Active {
            id,
            table: Arc::new(table),
            filter,
            columns,
            chunk_rows: chunk_rows.clamp(1, MAX_CHUNK_ROWS as i32) as u32,
            last_key,
        }))
    }

    /// Reads the next chunk between its two watermarks.
    pub async fn read_chunk(&mut self, pg: &PgStore) -> Result<Chunk> {
        let entity = self.table.plan.entity;
        let id_field = entity.id();
        let read = uuid::Uuid::new_v4().to_string();
        watermark(pg, self.id, &read, false).await?;
        let mut sql = Sql::new(format!(
            "SELECT {} FROM {}.{} WHERE ",
            self.columns,
            ident(pg.schema()),
            ident(entity.name)
        ));
        let filter = match &self.last_key {
            None => self.filter.clone(),
            Some(key) => Filter::And(vec![
                self.filter.clone(),
                Filter::Gt(id_field.name.to_owned(), key.clone()),
            ]),
        };
        sql.filter(entity, &filter)?;
        sql.order_by(entity, &[SortKey::asc(id_field.name)])?;
        sql.push(&format!(" LIMIT {}", self.chunk_rows));
        let rows = read_after_low_watermark(pg, sql).await?;
        watermark(pg, self.id, &read, true).await?;

        let id_column = self
            .table
            .id_column()
            .ok_or_else(|| invalid(format!("table {} has no id column", entity.name)))?;
        let mut tuples = Vec::with_capacity(rows.len());
        let mut by_key = HashMap::with_capacity(rows.len());
        for row in &rows {
            let mut tuple = Vec::with_capacity(row.len());
            for c in 0..row.len() {
                let raw = row.try_get_raw(c).map_err(store_error)?;
                tuple.push(if sqlx::ValueRef::is_null(&raw) {
                    Column::Null
                } else {
                    let bytes = raw.as_bytes().map_err(|_| {
                        Error::new(
                            ErrorKind::DataCorruption,
                            "a snapshot value without its bytes",
                        )
                    })?;
                    Column::Binary(Bytes::copy_from_slice(bytes))
                });
            }
            if let Some(Column::Binary(key)) = tuple.get(id_column) {
                by_key.insert(key.clone(), tuples.len());
            }
            tuples.push(Some(tuple));
        }
        let last_key = match tuples
            .last()
            .and_then(|t| t.as_ref())
            .map(|t| &t[id_column])
        {
            Some(Column::Binary(bytes)) => {
                let type_oid = self.table.type_oid(id_column);
                Some(crate::column_value::read(id_field.kind, type_oid, bytes)?)
            }
            _ => None,
        };
        if last_key.is_some() {
            self.last_key.clone_from(&last_key);
        }
        let done = ChunkDone {
            snapshot: self.id,
            rows_read: tuples.len() as i64,
            rows_sent: 0,
            last_key: last_key.map(|k| k.to_json()),
            finished: tuples.len() < self.chunk_rows as usize,
        };
        Ok(Chunk {
            snapshot: self.id,
            read,
            window_open: false,
            entity: entity.name,
            rows: tuples,
            by_key,
            done,
        })
    }
}

/// Longest a chunk's read waits for the transactions that were running when its low watermark
/// committed; beyond it, the read is refused (`Unavailable`) and tried again by the relay.
const VISIBILITY_WAIT: Duration = Duration::from_secs(30);
/// How long a transaction still marked in progress may hold a read up: one whose commit record
/// was written just before the watermark is marked committed within the time of a WAL flush.
const IN_PROGRESS_GRACE: Duration = Duration::from_secs(2);
/// Pause between two looks at whether those transactions have finished.
const VISIBILITY_POLL: Duration = Duration::from_millis(1);

/// Every transaction that may have written its commit before the low watermark without being
/// visible yet: those a snapshot taken now holds as running, and every id assigned since that
/// snapshot's horizon (a running transaction above it is not listed), up to a fresh one.
const CANDIDATES: &str = "SELECT ARRAY(
        SELECT x::text FROM pg_snapshot_xip(s) AS x
        UNION ALL
        SELECT g::text FROM generate_series(pg_snapshot_xmax(s)::text::bigint,
                                            pg_current_xact_id()::text::bigint - 1) AS g)
    FROM pg_current_snapshot() AS s";

/// Of the candidates, those this transaction's snapshot still holds as running, and those of
/// them already marked committed or aborted (their commit or abort record is written).
const STILL_RUNNING: &str =
    "SELECT count(*), count(*) FILTER (WHERE pg_xact_status(x) <> 'in progress')
    FROM unnest($1::text[]) AS c, LATERAL (SELECT c::xid8 AS x) AS t
    WHERE NOT pg_visible_in_snapshot(x, pg_current_snapshot())";

/// Runs the chunk's `select` on a snapshot that sees every transaction whose commit the
/// stream carries before the low watermark. PostgreSQL writes a commit to the WAL a moment
/// before the transaction becomes visible (and marks it committed in between), so a read begun
/// just after the watermark may miss one committed before it, whose change would then not
/// supersede the stale row. The transactions running when the watermark committed are taken
/// (including those above the snapshot's horizon, which its list of running ones leaves out),
/// and the read waits on a snapshot that sees each of them finished, or, for those still
/// marked in progress after a grace (their commit comes after the watermark), running.
async fn read_after_low_watermark(pg: &PgStore, select: Sql) -> Result<Vec<sqlx::postgres::PgRow>> {
    let candidates: Vec<String> = sqlx::query_scalar(CANDIDATES)
        .fetch_one(pg.pool())
        .await
        .map_err(store_error)?;
    let started = std::time::Instant::now();
    let mut tx = loop {
        let mut tx = pg.pool().begin().await.map_err(store_error)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        // The first query takes the snapshot the chunk is then read on.
        let (running, finishing): (i64, i64) = sqlx::query_as(STILL_RUNNING)
            .bind(&candidates)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        let waited = started.elapsed();
        if running == 0 || (finishing == 0 && waited >= IN_PROGRESS_GRACE) {
            break tx;
        }
        if waited >= VISIBILITY_WAIT {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "a transaction committed before the low watermark stayed invisible to the read",
            ));
        }
        drop(tx);
        tokio::time::sleep(VISIBILITY_POLL).await;
    };
    let rows = sqlx::query_with(
        sqlx::AssertSqlSafe(select.text),
        udl_postgres::values::arguments(select.params)?,
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(store_error)?;
    tx.commit().await.map_err(store_error)?;
    Ok(rows)
}

/// Records a chunk whose events are durable; the last one ends the snapshot.
pub(crate) async fn record(pg: &PgStore, done: &ChunkDone) -> Result<()> {
    sqlx::query(
        "UPDATE udl_cdc_snapshots SET chunks = chunks + 1, rows_read = rows_read + $2,
             rows_sent = rows_sent + $3, last_key = coalesce($4, last_key),
             state = CASE WHEN $5 THEN 'done' ELSE state END,
             finished_at = CASE WHEN $5 THEN now() END
         WHERE id = $1 AND state = 'running'",
    )
    .bind(done.snapshot)
    .bind(done.rows_read)
    .bind(done.rows_sent)
    .bind(&done.last_key)
    .bind(done.finished)
    .execute(pg.pool())
    .await
    .map_err(store_error)?;
    if done.finished {
        tracing::info!(snapshot = done.snapshot, "snapshot done");
    }
    Ok(())
}

/// Marks snapshot `id` failed, and why.
pub(crate) async fn fail(pg: &PgStore, id: i64, reason: &str) -> Result<()> {
    tracing::warn!(snapshot = id, reason = %reason, "snapshot failed");
    sqlx::query(
        "UPDATE udl_cdc_snapshots SET state = 'failed', reason = $2, finished_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .execute(pg.pool())
    .await
    .map_err(store_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_field_operator_and_value() {
        let c: Condition = "minutes>=30".parse().unwrap();
        assert_eq!(
            (c.field.as_str(), c.op, c.value),
            ("minutes", Op::Gte, Json::from(30))
        );
        let c: Condition = "status = active".parse().unwrap();
        assert_eq!(
            (c.field.as_str(), c.op, c.value),
            ("status", Op::Eq, Json::from("active"))
        );
        let c: Condition = "note!=a=b".parse().unwrap();
        assert_eq!(
            (c.op, c.value),
            (Op::Ne, Json::from("a=b")),
            "the first operator splits"
        );
        let c: Condition = "at<2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            (c.op, c.value),
            (Op::Lt, Json::from("2026-01-01T00:00:00Z"))
        );
        assert!("no operator".parse::<Condition>().is_err());
        assert!("=x".parse::<Condition>().is_err());
    }
}
