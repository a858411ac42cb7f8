//! Deletion receipts: every purge step records which class, which store, which range, how many
//! records went and how many a legal hold kept, under which policy, by which job run and when.
//! The table is append-only; a receipt names holds by id and never a record's content.

use chrono::{DateTime, Utc};
use udl_core::{Error, Result};
use udl_postgres::PgStore;
use uuid::Uuid;

/// One receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionReceipt {
    /// Its id.
    pub id: Uuid,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The job and its run (`retention_purge/<run id>`).
    pub job: String,
    /// The data class.
    pub data_class: String,
    /// The store (`postgres`, ...).
    pub store: String,
    /// The policy applied (`phi_access_log: keep 6years`).
    pub policy: String,
    /// The oldest instant of the range removed (or held back).
    pub range_from: Option<DateTime<Utc>>,
    /// The end of that range (exclusive).
    pub range_to: Option<DateTime<Utc>>,
    /// Records deleted.
    pub deleted: i64,
    /// Records a legal hold kept.
    pub held_back: i64,
    /// The holds that kept them.
    pub holds: Vec<Uuid>,
    /// What was removed or kept (partition names, steps).
    pub detail: serde_json::Value,
}

fn classify(e: sqlx::Error) -> Error {
    udl_postgres::classify(&e, "deletion receipts")
}

type ReceiptRow = (
    Uuid,
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i64,
    i64,
    serde_json::Value,
    serde_json::Value,
);

/// The receipts kept in PostgreSQL.
#[derive(Clone)]
pub struct Receipts {
    pg: PgStore,
}

impl Receipts {
    /// Receipts in `pg`.
    pub fn new(pg: PgStore) -> Self {
        Receipts { pg }
    }

    /// Records `receipt` within `tx` (with the deletion it describes).
    pub async fn record(tx: &mut sqlx::PgConnection, receipt: &DeletionReceipt) -> Result<()> {
        let holds: Vec<String> = receipt.holds.iter().map(Uuid::to_string).collect();
        sqlx::query(
            "INSERT INTO deletion_receipts (id, recorded_at, job, data_class, store, policy,
                 range_from, range_to, deleted, held_back, holds, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(receipt.id)
        .bind(receipt.recorded_at)
        .bind(&receipt.job)
        .bind(&receipt.data_class)
        .bind(&receipt.store)
        .bind(&receipt.policy)
        .bind(receipt.range_from)
        .bind(receipt.range_to)
        .bind(receipt.deleted)
        .bind(receipt.held_back)
        .bind(serde_json::json!(holds))
        .bind(&receipt.detail)
        .execute(tx)
        .await
        .map_err(classify)?;
        Ok(())
    }

    /// Records `receipt` on a connection of `pg`'s pool, on its own.
    pub async fn write(pg: &PgStore, receipt: &DeletionReceipt) -> Result<()> {
        let mut conn = pg.pool().acquire().await.map_err(classify)?;
        Self::record(&mut conn, receipt).await
    }

    /// The receipts recorded since `since` (all without it), oldest first.
    pub async fn since(&self, since: Option<DateTime<Utc>>) -> Result<Vec<DeletionReceipt>> {
        let rows: Vec<ReceiptRow> = sqlx::query_as(
            "SELECT id, recorded_at, job, data_class, store, policy, range_from, range_to,
                    deleted, held_back, holds, detail
             FROM deletion_receipts WHERE $1::timestamptz IS NULL OR recorded_at >= $1
             ORDER BY recorded_at, id",
        )
        .bind(since)
        .fetch_all(self.pg.pool())
        .await
        .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|r| DeletionReceipt {
                id: r.0,
                recorded_at: r.1,
                job: r.2,
                data_class: r.3,
                store: r.4,
                policy: r.5,
                range_from: r.6,
                range_to: r.7,
                deleted: r.8,
                held_back: r.9,
                holds: serde_json::from_value(r.10).unwrap_or_default(),
                detail: r.11,
            })
            .collect())
    }
}
