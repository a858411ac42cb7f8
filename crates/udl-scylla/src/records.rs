//! The generic repository over CQL, for entities read by key. Single-record operations need
//! the id to be the whole primary key; `list` and `count` need the partition key (see
//! [`crate::cql`]). Inserts, updates and deletes are lightweight transactions, so a duplicate id
//! is a `Conflict` and an update reports whether it matched, as on every other store; the
//! high-volume paths ([`crate::TimeSeries`], [`crate::EventLog`]) use plain writes instead.

use std::time::Duration;
use udl_core::op;

use async_trait::async_trait;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use udl_core::{
    AccessContext, Capabilities, Capability, EntityMeta, Error, ErrorKind, Filter, Query, Record,
    RecordStore, Result, StoreKind, ValidChanges, Value,
};

use crate::cql::{columns, order_by, where_clause};
use crate::error::{classify, unexpected_shape};
use crate::key_size::{check_partition_key, check_record_key};
use crate::lock::lwt_applied;
use crate::session::ScyllaSession;
use crate::values::{from_cql, to_cql};

/// Times an update without an expected version retries when a concurrent update wins.
const UPDATE_ATTEMPTS: usize = 5;

/// Records of key-read entities in ScyllaDB.
pub struct ScyllaRecords {
    session: ScyllaSession,
}

impl ScyllaRecords {
    pub(crate) fn new(session: ScyllaSession) -> Self {
        ScyllaRecords { session }
    }

    fn table(&self, entity: &EntityMeta) -> String {
        format!("\"{}\".\"{}\"", self.session.keyspace(), entity.name)
    }

    /// Single-record operations address a record by id alone.
    fn require_id_key(entity: &EntityMeta, operation: &'static str) -> Result<()> {
        if entity.keyed_by_id() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{} is keyed by ({}) in ScyllaDB, so it cannot be addressed by id alone; use list",
                entity.name,
                entity
                    .partition_fields()
                    .iter()
                    .chain(entity.clustering_key)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_store(StoreKind::SCYLLA)
        .with_operation(operation))
    }

    async fn run(
        &self,
        cql: String,
        values: Vec<Option<CqlValue>>,
        operation: &'static str,
    ) -> Result<scylla::response::query_result::QueryResult> {
        self.session
            .session()
            .execute_unpaged(cql, values)
            .await
            .map_err(|e| classify(&e, operation))
    }

    fn decode(entity: &'static EntityMeta, row: Row) -> Result<Record> {
        let mut record = Record::with_capacity(entity.fields.len());
        for (field, cql) in entity.fields.iter().zip(row.columns) {
            record.push(field.name, from_cql(field, cql)?);
        }
        Ok(record)
    }

    fn rows(
        entity: &'static EntityMeta,
        result: scylla::response::query_result::QueryResult,
        operation: &'static str,
    ) -> Result<Vec<Record>> {
        let malformed = || unexpected_shape(operation);
        let rows = result.into_rows_result().map_err(|_| malformed())?;
        rows.rows::<Row>()
            .map_err(|_| malformed())?
            .map(|row| Self::decode(entity, row.map_err(|_| malformed())?))
            .collect()
    }

    /// An INSERT of `record` (`condition`: `" IF NOT EXISTS"` or empty), expiring after `ttl`.
    fn insert_statement(
        &self,
        entity: &'static EntityMeta,
        record: &Record,
        condition: &str,
        ttl: Option<Duration>,
    ) -> Result<(String, Vec<Option<CqlValue>>)> {
        let values = entity
            .fields
            .iter()
            .map(|f| to_cql(f, record.get(f.name).unwrap_or(&Value::Null)))
            .collect::<Result<Vec<_>>>()?;
        let placeholders = vec!["?"; values.len()].join(", ");
        let using = match ttl {
            Some(ttl) => format!(" USING TTL {}", ttl.as_secs().clamp(1, 630_720_000)),
            None => String::new(),
        };
        let cql = format!(
            "INSERT INTO {} ({}) VALUES ({placeholders}){condition}{using}",
            self.table(entity),
            columns(entity)
        );
        Ok((cql, values))
    }

    async fn insert_if_absent(
        &self,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_record_key(entity, &record, op::CREATE)?;
        let (cql, values) = self.insert_statement(entity, &record, " IF NOT EXISTS", ttl)?;
        let result = self.run(cql, values, op::CREATE).await?;
        if lwt_applied(result)? {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Conflict,
                format!("a {} with that key already exists", entity.name),
            )
            .with_store(StoreKind::SCYLLA)
            .with_operation(op::CREATE))
        }
    }

    /// The stored version of the record with `id`, or `None` when there is none.
    async fn current_version(
        &self,
        entity: &'static EntityMeta,
        version: &str,
        id: &Value,
    ) -> Result<Option<i64>> {
        let cql = format!(
            "SELECT \"{version}\" FROM {} WHERE \"{}\" = ?",
            self.table(entity),
            entity.id_field
        );
        let result = self
            .run(cql, vec![to_cql(entity.id(), id)?], "update")
            .await?;
        let rows = result
            .into_rows_result()
            .map_err(|_| unexpected_shape("update"))?;
        Ok(rows
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(|_| unexpected_shape("update"))?
            .map(|(v,)| v.unwrap_or(0)))
    }
}

/// One page of a whole-table scan: each record with the time to live its row had left.
pub type ScanPage = Vec<(Record, Option<Duration>)>;

/// A whole-table scan of one entity, a page at a time, in token order (from
/// [`ScyllaRecords::scan`]). For maintenance jobs only: a full scan is wrong on a request path.
pub struct TableScan<'a> {
    records: &'a ScyllaRecords,
    entity: &'static EntityMeta,
    select: PreparedStatement,
    /// Where the next page starts; `None` after the last.
    next: Option<PagingState>,
}

impl ScyllaRecords {
    /// A scan of every record of `entity`, `page_size` rows a page; the statement is prepared
    /// once for the whole scan.
    pub async fn scan(&self, entity: &'static EntityMeta, page_size: i32) -> Result<TableScan<'_>> {
        // A row's time to live is its cells' (udl writes a whole row with one TTL); the
        // largest left among the non-key, non-collection columns is kept, as a null cell has
        // none.
        let ttl_columns: Vec<String> = entity
            .fields
            .iter()
            .filter(|f| {
                !entity.partition_fields().contains(&f.name)
                    && !entity.clustering_key.contains(&f.name)
                    && f.kind != udl_core::ValueKind::Vector
            })
            .map(|f| format!(", TTL(\"{}\")", f.name))
            .collect();
        let mut select = self
            .session
            .prepare(format!(
                "SELECT {}{} FROM {}",
                columns(entity),
                ttl_columns.concat(),
                self.table(entity)
            ))
            .await?;
        select.set_page_size(page_size.max(1));
        Ok(TableScan {
            records: self,
            entity,
            select,
            next: Some(PagingState::start()),
        })
    }

    /// Rewrites every record of `entity` that `change` returns a new version of, reading the
    /// whole table with [`ScyllaRecords::scan`]; `progress` hears how many were read so far
    /// after each page. Each rewrite is a plain upsert of the whole record that keeps the
    /// time to live the row had left, so this is for tables whose rows are not updated
    /// concurrently, such as the chat archive (re-encryption after a key rotation). Returns
    /// (read, rewritten).
    pub async fn rewrite_all(
        &self,
        entity: &'static EntityMeta,
        page_size: i32,
        mut change: impl FnMut(&Record) -> Result<Option<Record>>,
        mut progress: impl FnMut(u64),
    ) -> Result<(u64, u64)> {
        let (mut read, mut rewritten) = (0, 0);
        let mut scan = self.scan(entity, page_size).await?;
        while let Some(page) = scan.next_page().await? {
            for (record, ttl) in page {
                read += 1;
                if let Some(new) = change(&record)? {
                    let (cql, values) = self.insert_statement(entity, &new, "", ttl)?;
                    self.run(cql, values, "rewrite").await?;
                    rewritten += 1;
                }
            }
            progress(read);
        }
        Ok((read, rewritten))
    }
}

impl TableScan<'_> {
    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<ScanPage>> {
        let Some(from) = self.next.take() else {
            return Ok(None);
        };
        let malformed = || unexpected_shape("scan");
        let (result, next) = self
            .records
            .session
            .session()
            .get_session()
            .execute_single_page(&self.select, (), from)
            .await
            .map_err(|e| classify(&e, "scan"))?;
        let rows = result.into_rows_result().map_err(|_| malformed())?;
        let mut page = Vec::new();
        for row in rows.rows::<Row>().map_err(|_| malformed())? {
            let mut row = row.map_err(|_| malformed())?;
            let ttl = row
                .columns
                .split_off(self.entity.fields.len())
                .into_iter()
                .filter_map(|cell| match cell {
                    Some(CqlValue::Int(seconds)) => Some(seconds.max(1).unsigned_abs()),
                    _ => None,
                })
                .max()
                .map(|seconds| Duration::from_secs(seconds.into()));
            page.push((ScyllaRecords::decode(self.entity, row)?, ttl));
        }
        self.next = match next {
            PagingStateResponse::HasMorePages { state } => Some(state),
            PagingStateResponse::NoMorePages => None,
        };
        Ok(Some(page))
    }
}

#[async_trait]
impl RecordStore for ScyllaRecords {
    fn kind(&self) -> StoreKind {
        StoreKind::SCYLLA
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[Capability::Ttl, Capability::Count])
    }

    async fn insert(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        self.insert_if_absent(entity, record, None).await
    }

    async fn insert_with_ttl(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
        ttl: Duration,
    ) -> Result<()> {
        self.insert_if_absent(entity, record, Some(ttl)).await
    }

    /// Refused: CQL has no all-or-nothing insert of many new rows across partitions.
    async fn insert_many(
        &self,
        _ctx: &AccessContext,
        _entity: &'static EntityMeta,
        _records: Vec<Record>,
    ) -> Result<u64> {
        Err(Error::unsupported(StoreKind::SCYLLA, op::CREATE_MANY))
    }

    async fn fetch(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        Self::require_id_key(entity, "get")?;
        check_partition_key(entity, [id], op::GET)?;
        let cql = format!(
            "SELECT {} FROM {} WHERE \"{}\" = ?",
            columns(entity),
            self.table(entity),
            entity.id_field
        );
        let result = self.run(cql, vec![to_cql(entity.id(), id)?], "get").await?;
        Ok(Self::rows(entity, result, "get")?.into_iter().next())
    }

    async fn exists(
        &self,
        ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        Ok(self.fetch(ctx, entity, id).await?.is_some())
    }

    async fn update(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        Self::require_id_key(entity, "update")?;
        check_partition_key(entity, [id], op::UPDATE)?;
        if changes
            .sets
            .iter()
            .any(|(name, _)| *name == entity.id_field)
        {
            return Err(Error::invalid("the id of a record cannot change").with_operation("update"));
        }
        let mut assignments = Vec::new();
        let mut values = Vec::new();
        for (name, value) in &changes.sets {
            assignments.push(format!("\"{name}\" = ?"));
            values.push(to_cql(entity.require_field(name)?, value)?);
        }
        let id_value = to_cql(entity.id(), id)?;
        let Some(version) = entity.version_field else {
            if assignments.is_empty() {
                return Ok(self.fetch(_ctx, entity, id).await?.is_some());
            }
            let cql = format!(
                "UPDATE {} SET {} WHERE \"{}\" = ? IF EXISTS",
                self.table(entity),
                assignments.join(", "),
                entity.id_field
            );
            values.push(id_value);
            return lwt_applied(self.run(cql, values, "update").await?);
        };
        assignments.push(format!("\"{version}\" = ?"));
        let cql = format!(
            "UPDATE {} SET {} WHERE \"{}\" = ? IF \"{version}\" = ?",
            self.table(entity),
            assignments.join(", "),
            entity.id_field
        );
        for _ in 0..UPDATE_ATTEMPTS {
            let expected = match changes.expected_version {
                Some(v) => v,
                None => match self.current_version(entity, version, id).await? {
                    Some(v) => v,
                    None => return Ok(false),
                },
            };
            let mut bound = values.clone();
            bound.push(Some(CqlValue::BigInt(expected + 1)));
            bound.push(id_value.clone());
            bound.push(Some(CqlValue::BigInt(expected)));
            if lwt_applied(self.run(cql.clone(), bound, "update").await?)? {
                return Ok(true);
            }
            if changes.expected_version.is_some() {
                return Ok(false);
            }
            // Someone else updated in between: read the new version and try again.
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{} kept changing under concurrent updates", entity.name),
        )
        .with_store(StoreKind::SCYLLA)
        .with_operation("update")
        .temporary(true))
    }

    async fn delete(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        Self::require_id_key(entity, "delete")?;
        check_partition_key(entity, [id], op::DELETE)?;
        let cql = format!(
            "DELETE FROM {} WHERE \"{}\" = ? IF EXISTS",
            self.table(entity),
            entity.id_field
        );
        lwt_applied(
            self.run(cql, vec![to_cql(entity.id(), id)?], "delete")
                .await?,
        )
    }

    async fn list(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        if query.offset > 0 {
            return Err(Error::unsupported(StoreKind::SCYLLA, "list with offset"));
        }
        let restriction = where_clause(entity, &query.filter, "list")?;
        let order = order_by(entity, &query.sort, &restriction)?;
        let cql = format!(
            "SELECT {} FROM {}{}{order} LIMIT {}",
            columns(entity),
            self.table(entity),
            restriction.clause,
            query.limit.max(1)
        );
        let result = self.run(cql, restriction.values, "list").await?;
        Self::rows(entity, result, "list")
    }

    async fn count(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        let restriction = where_clause(entity, filter, "count")?;
        let cql = format!(
            "SELECT COUNT(*) FROM {}{}",
            self.table(entity),
            restriction.clause
        );
        let result = self.run(cql, restriction.values, "count").await?;
        let rows = result
            .into_rows_result()
            .map_err(|_| unexpected_shape("count"))?;
        let (n,) = rows
            .single_row::<(i64,)>()
            .map_err(|_| unexpected_shape("count"))?;
        Ok(n.max(0) as u64)
    }
}
