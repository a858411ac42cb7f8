//! Plaintext left from before a field was sealed, sealed in place. PostgreSQL migrations 10
//! and 11 moved such values to `<field>_plaintext` columns (users' e-mail addresses and display
//! names, the kinds of care relationships); this seals each one into its field (and blind
//! index) and empties the plaintext column in the same statement.

use udl_core::{Entity as _, EntityMeta, Error, ErrorKind, Result, StoreKind, ValidChanges, Value};
use udl_postgres::models::{PatientRelationship, User};
use udl_postgres::PgStore;
use uuid::Uuid;

use crate::field_keys::FieldKeys;
use crate::sealing::Sealer;

/// A PostgreSQL column holding values written before their field was sealed.
#[derive(Clone, Copy, Debug)]
pub struct PlaintextColumn {
    /// The entity (and table) the column belongs to.
    pub entity: &'static EntityMeta,
    /// The sealed field the values belong in.
    pub field: &'static str,
}

impl PlaintextColumn {
    /// The column's name: the field's, with `_plaintext`.
    pub fn column(&self) -> String {
        format!("{}_plaintext", self.field)
    }
}

impl std::fmt::Display for PlaintextColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.entity.name, self.column())
    }
}

/// Every column the platform's migrations left plaintext in.
pub fn plaintext_columns() -> [PlaintextColumn; 3] {
    [
        PlaintextColumn {
            entity: User::meta(),
            field: "email",
        },
        PlaintextColumn {
            entity: User::meta(),
            field: "display_name",
        },
        PlaintextColumn {
            entity: PatientRelationship::meta(),
            field: "kind",
        },
    ]
}

/// Seals every value still in `column`, `batch` rows at a time; `progress` hears the running
/// count after each batch. Returns how many were sealed. A value whose blind index is already
/// taken by a sealed record (a duplicate e-mail address) fails the run with a `Conflict`
/// naming the record id (never the value), leaving that row as it was.
pub async fn seal_plaintext(
    pg: &PgStore,
    keys: &FieldKeys,
    column: PlaintextColumn,
    batch: usize,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let entity = column.entity;
    let sealer = Sealer::new(keys, StoreKind::POSTGRES.name(), entity)?;
    let (table, plain) = (entity.name, column.column());
    let mut sealed = 0;
    loop {
        // Identifiers come from the entity's static declaration; values are bound.
        let rows: Vec<(Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, {plain}::text FROM {table} WHERE {plain} IS NOT NULL ORDER BY id LIMIT $1"
        )))
        .bind(i64::try_from(batch.max(1)).unwrap_or(i64::MAX))
        .fetch_all(pg.pool())
        .await
        .map_err(|e| udl_postgres::classify(&e, "read plaintext values"))?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        for (id, value) in rows {
            let changes = ValidChanges {
                sets: vec![(column.field, Value::Text(value))],
                expected_version: None,
            };
            let stored = sealer.seal_changes(&Value::Uuid(id), &changes)?;
            let mut sets = Vec::with_capacity(stored.sets.len());
            let mut bytes = Vec::with_capacity(stored.sets.len());
            for (name, value) in stored.sets {
                let Value::Bytes(b) = value else {
                    return Err(Error::new(ErrorKind::Internal, "sealing gave no bytes"));
                };
                sets.push(format!("{name} = ${}", bytes.len() + 2));
                bytes.push(b);
            }
            let update = format!(
                "UPDATE {table} SET {}, {plain} = NULL, version = version + 1 WHERE id = $1",
                sets.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(update)).bind(id);
            for b in bytes {
                query = query.bind(b);
            }
            query.execute(pg.pool()).await.map_err(|e| {
                match udl_postgres::classify(&e, "seal a plaintext value") {
                    conflict if conflict.kind() == ErrorKind::Conflict => Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "{table} {id}: another record already has this {}; resolve the \
                             duplicate and run again",
                            column.field
                        ),
                    )
                    .with_store(StoreKind::POSTGRES),
                    other => other,
                }
            })?;
            sealed += 1;
        }
        progress(sealed);
    }
}

/// How many values are still in `column`.
pub async fn count_plaintext(pg: &PgStore, column: PlaintextColumn) -> Result<u64> {
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {} WHERE {} IS NOT NULL",
        column.entity.name,
        column.column()
    )))
    .fetch_one(pg.pool())
    .await
    .map_err(|e| udl_postgres::classify(&e, "count plaintext values"))?;
    Ok(count.unsigned_abs())
}
