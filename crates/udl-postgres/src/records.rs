//! The generic record operations of PostgreSQL, on whichever executor they are given.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row};
use udl_core::op;
use udl_core::{
    AccessContext, Capabilities, Capability, EntityMeta, Filter, Query, Record, RecordStore,
    Result, StoreKind, ValidChanges, Value, ValueKind,
};

use std::sync::Arc;

use crate::copy;
use crate::error::classify;
use crate::executor::Executor;
use crate::sql::{ident, Sql};
use crate::statements::{self, Statement};
use crate::values;

/// What PostgreSQL offers through the generic API. No TTL and no vector search: asking for
/// them is refused with `Unsupported`.
pub const CAPABILITIES: Capabilities = Capabilities::of(&[
    Capability::Transactions,
    Capability::SecondaryFilters,
    Capability::Sorting,
    Capability::OffsetPagination,
    Capability::Count,
    Capability::BulkInsert,
    Capability::PrefixFilter,
]);

/// Record operations over an executor (pool or transaction).
#[derive(Clone)]
pub struct PgRecords {
    pub(crate) exec: Executor,
}

/// SQL text with its parameters: text assembled from entity metadata only, every value a
/// bind parameter.
struct Prepared {
    text: Arc<str>,
    params: Vec<(ValueKind, Value)>,
}

impl From<Sql> for Prepared {
    fn from(sql: Sql) -> Self {
        Prepared {
            text: sql.text.into(),
            params: sql.params,
        }
    }
}

/// A cached per-entity statement whose only parameter is the id.
fn by_id(
    entity: &'static EntityMeta,
    statement: Statement,
    id: &Value,
    op: &'static str,
) -> Result<Prepared> {
    let mut sql = Sql::default();
    sql.bind(entity, entity.id(), id.clone())
        .map_err(|e| e.with_operation(op))?;
    Ok(Prepared {
        text: statements::get(entity, statement),
        params: sql.params,
    })
}

impl Prepared {
    /// The sqlx query with its arguments bound.
    fn query(self, op: &'static str) -> Result<PgQuery> {
        let args = values::arguments(self.params).map_err(|e| e.with_operation(op))?;
        Ok(sqlx::query_with(AssertSqlSafe(self.text), args))
    }
}

type PgQuery = sqlx::query::Query<'static, Postgres, PgArguments>;

async fn fetch_row(
    conn: &mut PgConnection,
    sql: impl Into<Prepared>,
    op: &'static str,
) -> Result<Option<PgRow>> {
    let query = sql.into().query(op)?;
    query
        .fetch_optional(conn)
        .await
        .map_err(|e| classify(&e, op))
}

async fn fetch_rows(
    conn: &mut PgConnection,
    sql: impl Into<Prepared>,
    op: &'static str,
) -> Result<Vec<PgRow>> {
    let query = sql.into().query(op)?;
    query.fetch_all(conn).await.map_err(|e| classify(&e, op))
}

async fn execute(
    conn: &mut PgConnection,
    sql: impl Into<Prepared>,
    op: &'static str,
) -> Result<PgQueryResult> {
    let query = sql.into().query(op)?;
    query.execute(conn).await.map_err(|e| classify(&e, op))
}

fn where_id(sql: &mut Sql, entity: &'static EntityMeta, id: &Value) -> Result<()> {
    sql.push(" WHERE ");
    sql.push(&ident(entity.id_field));
    sql.push(" = ");
    sql.param(entity, entity.id(), id.clone())
}

fn insert_sql(entity: &'static EntityMeta, mut record: Record) -> Result<Prepared> {
    let mut sql = Sql::default();
    for field in entity.fields {
        let value = record.take(field.name).unwrap_or(Value::Null);
        sql.bind(entity, field, value)?;
    }
    Ok(Prepared {
        text: statements::get(entity, Statement::Insert),
        params: sql.params,
    })
}

#[async_trait]
impl RecordStore for PgRecords {
    fn kind(&self) -> StoreKind {
        StoreKind::POSTGRES
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn insert(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        record: Record,
    ) -> Result<()> {
        let sql = insert_sql(entity, record).map_err(|e| e.with_operation(op::CREATE))?;
        let mut conn = self.exec.conn(op::CREATE).await?;
        execute(&mut conn, sql, op::CREATE).await.map(|_| ())
    }

    async fn insert_many(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        records: Vec<Record>,
    ) -> Result<u64> {
        let mut conn = self.exec.conn(op::CREATE_MANY).await?;
        copy::copy_records(&mut conn, entity, records).await
    }

    async fn fetch(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<Option<Record>> {
        let sql = by_id(entity, Statement::Fetch, id, "get")?;
        let mut conn = self.exec.conn("get").await?;
        let row = fetch_row(&mut conn, sql, "get").await?;
        row.as_ref()
            .map(|row| values::record(entity, row).map_err(|e| e.with_operation("get")))
            .transpose()
    }

    async fn update(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
        changes: &ValidChanges,
    ) -> Result<bool> {
        let op = "update";
        let mut sql = Sql::new(format!("UPDATE {} SET ", ident(entity.name)));
        for (i, (name, value)) in changes.sets.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let field = entity.require_field(name)?;
            sql.push(&ident(field.name));
            sql.push(" = ");
            sql.param(entity, field, value.clone())
                .map_err(|e| e.with_operation(op))?;
        }
        if let Some(version) = entity.version_field {
            let v = ident(version);
            sql.push(&format!(", {v} = {v} + 1"));
        }
        where_id(&mut sql, entity, id).map_err(|e| e.with_operation(op))?;
        if let (Some(expected), Some(version)) = (changes.expected_version, entity.version_field) {
            let field = entity.require_field(version)?;
            sql.push(&format!(" AND {} = ", ident(version)));
            sql.param(entity, field, Value::Int(expected))?;
        }
        let mut conn = self.exec.conn(op).await?;
        let done = execute(&mut conn, sql, op).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        let sql = by_id(entity, Statement::Delete, id, "delete")?;
        let mut conn = self.exec.conn("delete").await?;
        Ok(execute(&mut conn, sql, "delete").await?.rows_affected() > 0)
    }

    async fn list(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        query: &Query,
    ) -> Result<Vec<Record>> {
        let op = "list";
        let mut sql = Sql::new(&*statements::get(entity, Statement::SelectWhere));
        let built = sql
            .filter(entity, &query.filter)
            .and_then(|_| sql.order_by(entity, &query.sort));
        built.map_err(|e| e.with_operation(op))?;
        sql.push(&format!(" LIMIT {}", query.limit));
        if query.offset > 0 {
            sql.push(&format!(" OFFSET {}", query.offset));
        }
        let mut conn = self.exec.conn(op).await?;
        let rows = fetch_rows(&mut conn, sql, op).await?;
        rows.iter()
            .map(|row| values::record(entity, row).map_err(|e| e.with_operation(op)))
            .collect()
    }

    async fn count(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        filter: &Filter,
    ) -> Result<u64> {
        let op = "count";
        let mut sql = Sql::new(format!(
            "SELECT count(*) FROM {} WHERE ",
            ident(entity.name)
        ));
        sql.filter(entity, filter)
            .map_err(|e| e.with_operation(op))?;
        let mut conn = self.exec.conn(op).await?;
        let row = fetch_row(&mut conn, sql, op).await?;
        let n: i64 = row
            .as_ref()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| classify(&e, op))?
            .unwrap_or(0);
        Ok(n.max(0) as u64)
    }

    async fn exists(
        &self,
        _ctx: &AccessContext,
        entity: &'static EntityMeta,
        id: &Value,
    ) -> Result<bool> {
        let op = "exists";
        let sql = by_id(entity, Statement::Exists, id, op)?;
        let mut conn = self.exec.conn(op).await?;
        let row = fetch_row(&mut conn, sql, op).await?;
        row.as_ref()
            .map(|r| r.try_get::<bool, _>(0))
            .transpose()
            .map_err(|e| classify(&e, op))
            .map(|found| found.unwrap_or(false))
    }
}
