//! Retention of a PostgreSQL table partitioned by month (`<table>_yYYYYmMM`): a month goes once
//! all of it is past retention, detached with `DETACH PARTITION ... CONCURRENTLY` under a
//! bounded `lock_timeout` (writers and readers of the table carry on) and dropped in the same
//! transaction that records its receipt. A month holding anything a legal hold covers stays.
//! For the access log, the runs of chain positions a detached month holds are anchored before
//! it is dropped (see `phi_access_log_retired`) so the chain still verifies without them. Each
//! step can be cut off and is finished by the next run: a detach left pending is finalized, a
//! detached month is anchored (keeping the receipt id of anchors already made) and dropped.

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use sqlx::{Connection as _, PgConnection};
use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_postgres::PgStore;
use uuid::Uuid;

use super::holds::LegalHold;
use super::receipts::{DeletionReceipt, Receipts};
use super::{DataClass, RetentionPolicy};
use crate::job::JobRun;

/// Longest a detach waits for a lock before giving up until the next run.
const LOCK_TIMEOUT: &str = "10s";

/// A table partitioned by month, and how its retention is carried out.
#[derive(Clone, Copy, Debug)]
pub struct MonthPartitions {
    /// The partitioned table.
    pub table: &'static str,
    /// Its data class.
    pub class: DataClass,
    /// The column naming whose data a row is (legal holds on a subject), if rows have one.
    pub subject_column: Option<&'static str>,
    /// Whether its rows form the access log's hash chain (anchored before a month goes).
    pub chained: bool,
}

/// The PHI access log.
pub const ACCESS_LOG: MonthPartitions = MonthPartitions {
    table: "phi_access_log",
    class: DataClass::PhiAccessLog,
    subject_column: Some("patient_id"),
    chained: true,
};

/// The PHI change history.
pub const CHANGE_HISTORY: MonthPartitions = MonthPartitions {
    table: "phi_change_history",
    class: DataClass::PhiChangeHistory,
    subject_column: Some("patient_id"),
    chained: false,
};

/// The redaction ledger of change events (no subject: it holds field names, never values).
pub const REDACTION_LEDGER: MonthPartitions = MonthPartitions {
    table: "udl_redaction_ledger",
    class: DataClass::RedactionLedger,
    subject_column: None,
    chained: false,
};

/// One month's table.
#[derive(Clone, Debug)]
struct Month {
    name: String,
    first_day: NaiveDate,
    /// Still a partition of the table (possibly with a detach pending).
    attached: bool,
    detach_pending: bool,
}

impl Month {
    fn start(&self) -> DateTime<Utc> {
        Utc.from_utc_datetime(&self.first_day.and_time(chrono::NaiveTime::MIN))
    }

    fn end(&self) -> DateTime<Utc> {
        let next = self
            .first_day
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX);
        Utc.from_utc_datetime(&next.and_time(chrono::NaiveTime::MIN))
    }
}

/// What one table's purge did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionPurge {
    /// Months dropped (or that would be).
    pub dropped: Vec<String>,
    /// Rows they held.
    pub deleted: u64,
    /// Months a legal hold kept although past retention.
    pub held: Vec<String>,
    /// Rows of those months.
    pub held_back: u64,
    /// Receipts recorded.
    pub receipts: Vec<Uuid>,
}

fn classify(e: sqlx::Error) -> Error {
    udl_postgres::classify(&e, "retention")
}

/// The first day of the month a partition named `<table>_yYYYYmMM` holds.
fn month_of(table: &str, name: &str) -> Option<NaiveDate> {
    let suffix = name.strip_prefix(table)?.strip_prefix("_y")?;
    let (year, month) = suffix.split_once('m')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

impl MonthPartitions {
    /// Its month tables in `pg`'s schema, attached or left detached by a run cut off, oldest
    /// first.
    async fn months(&self, pg: &PgStore) -> Result<Vec<Month>> {
        let rows: Vec<(String, bool, bool)> = sqlx::query_as(
            "SELECT c.relname, i.inhrelid IS NOT NULL, COALESCE(i.inhdetachpending, false)
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
                  AND i.inhparent = to_regclass(quote_ident($2) || '.' || quote_ident($1))
             WHERE n.nspname = $2 AND c.relkind = 'r'
               AND c.relname ~ ('^' || $1 || '_y[0-9]{4}m[0-9]{2}$')",
        )
        .bind(self.table)
        .bind(pg.schema())
        .fetch_all(pg.pool())
        .await
        .map_err(classify)?;
        let mut months: Vec<Month> = rows
            .into_iter()
            .filter_map(|(name, attached, detach_pending)| {
                Some(Month {
                    first_day: month_of(self.table, &name)?,
                    name,
                    attached,
                    detach_pending,
                })
            })
            .collect();
        months.sort_by_key(|m| m.first_day);
        Ok(months)
    }

    /// Drops every month wholly past `policy` at `run.now` that no hold in `holds` covers,
    /// recording a receipt for each month dropped or held back.
    pub async fn purge(
        &self,
        pg: &PgStore,
        policy: &RetentionPolicy,
        run: &JobRun,
        holds: &[LegalHold],
    ) -> Result<PartitionPurge> {
        let kept_since = policy.kept_since(run.now);
        let expired: Vec<Month> = self
            .months(pg)
            .await?
            .into_iter()
            .filter(|m| m.end() <= kept_since)
            .collect();
        let class_holds: Vec<Uuid> = holds
            .iter()
            .filter(|h| h.holds_class(self.class))
            .map(|h| h.id)
            .collect();
        let mut outcome = PartitionPurge::default();
        let total = expired.len() as u64;
        for (done, month) in expired.into_iter().enumerate() {
            run.progress
                .advanced(self.class.as_str(), done as u64, Some(total));
            let holding = if class_holds.is_empty() {
                self.subject_holds_on(pg, &month.name, holds).await?
            } else {
                class_holds.clone()
            };
            if !holding.is_empty() {
                let rows = self.count(pg, &month.name, None).await?;
                outcome.held.push(month.name.clone());
                outcome.held_back += rows;
                if !run.dry_run {
                    let receipt = self.receipt(policy, run, &month, 0, rows, holding);
                    Receipts::write(pg, &receipt).await?;
                    outcome.receipts.push(receipt.id);
                }
                continue;
            }
            outcome.dropped.push(month.name.clone());
            if run.dry_run {
                outcome.deleted += self.count(pg, &month.name, None).await?;
            } else {
                let (receipt, dropped) = self.drop_month(pg, policy, run, &month).await?;
                outcome.deleted += dropped;
                outcome.receipts.push(receipt);
            }
        }
        run.progress
            .advanced(self.class.as_str(), total, Some(total));
        Ok(outcome)
    }

    /// Rows of month table `name` (only those of `subjects`, when given).
    async fn count(&self, pg: &PgStore, name: &str, subjects: Option<&[&str]>) -> Result<u64> {
        let sql = match (subjects, self.subject_column) {
            (Some(_), Some(column)) => {
                format!("SELECT count(*) FROM \"{name}\" WHERE {column} = ANY($1)")
            }
            (Some(_), None) => return Ok(0),
            (None, _) => format!("SELECT count(*) FROM \"{name}\""),
        };
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(subjects.unwrap_or_default())
            .fetch_one(pg.pool())
            .await
            .map_err(classify)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// The subject holds covering rows of month table `name`.
    async fn subject_holds_on(
        &self,
        pg: &PgStore,
        name: &str,
        holds: &[LegalHold],
    ) -> Result<Vec<Uuid>> {
        let mut holding = Vec::new();
        for hold in holds {
            if let Some(subject) = hold.subject_in(self.class) {
                if self.count(pg, name, Some(&[subject])).await? > 0 {
                    holding.push(hold.id);
                }
            }
        }
        Ok(holding)
    }

    fn receipt(
        &self,
        policy: &RetentionPolicy,
        run: &JobRun,
        month: &Month,
        deleted: u64,
        held_back: u64,
        holds: Vec<Uuid>,
    ) -> DeletionReceipt {
        let action = if holds.is_empty() {
            "dropped"
        } else {
            "held by legal hold"
        };
        DeletionReceipt {
            id: Uuid::new_v4(),
            recorded_at: Utc::now(),
            job: format!("retention_purge/{}", run.id),
            data_class: self.class.as_str().to_owned(),
            store: StoreKind::POSTGRES.name().to_owned(),
            policy: policy.describe(),
            range_from: Some(month.start()),
            range_to: Some(month.end()),
            deleted: i64::try_from(deleted).unwrap_or(i64::MAX),
            held_back: i64::try_from(held_back).unwrap_or(i64::MAX),
            holds,
            detail: serde_json::json!({
                "partition": month.name,
                "action": action,
            }),
        }
    }

    /// Detaches `month`, anchors its chain positions (for the access log) and drops it; the
    /// receipt's id and the rows dropped. Counting and anchoring come after the detach, when no
    /// entry logged late can join the month any more.
    async fn drop_month(
        &self,
        pg: &PgStore,
        policy: &RetentionPolicy,
        run: &JobRun,
        month: &Month,
    ) -> Result<(Uuid, u64)> {
        if month.attached {
            self.detach(pg, month).await?;
        }
        let rows = self.count(pg, &month.name, None).await?;
        let mut receipt = self.receipt(policy, run, month, rows, 0, Vec::new());
        if self.chained {
            receipt.id = anchor_chain(pg, &month.name, receipt.id).await?;
        }
        let mut tx = pg.pool().begin().await.map_err(classify)?;
        Receipts::record(&mut tx, &receipt).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP TABLE \"{}\"",
            month.name
        )))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        tracing::info!(
            class = self.class.as_str(),
            partition = %month.name,
            rows,
            "retention dropped a month"
        );
        Ok((receipt.id, rows))
    }

    /// Detaches `month` concurrently (or finalizes a detach left pending), on a connection of
    /// its own with a bounded lock wait.
    async fn detach(&self, pg: &PgStore, month: &Month) -> Result<()> {
        let mut conn = PgConnection::connect_with(&pg.pool().connect_options())
            .await
            .map_err(classify)?;
        let mode = if month.detach_pending {
            "FINALIZE"
        } else {
            "CONCURRENTLY"
        };
        let detached = async {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SET lock_timeout = '{LOCK_TIMEOUT}'"
            )))
            .execute(&mut conn)
            .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE \"{}\" DETACH PARTITION \"{}\" {mode}",
                self.table, month.name
            )))
            .execute(&mut conn)
            .await
        }
        .await;
        conn.close().await.ok();
        detached.map(|_| ()).map_err(|e| {
            let error = classify(e);
            if error.kind() == ErrorKind::Timeout {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "detaching {} waited longer than {LOCK_TIMEOUT} for its lock; the next run finishes it",
                        month.name
                    ),
                )
                .temporary(true)
            } else {
                error
            }
        })
    }
}

/// Records the runs of consecutive chain positions month table `name` holds, with the hash of
/// each run's last entry; the receipt id they name (an earlier, cut-off run's, if it anchored
/// this month without dropping it).
async fn anchor_chain(pg: &PgStore, name: &str, receipt: Uuid) -> Result<Uuid> {
    // A month dropped before may come back (an entry of it logged late): only anchors whose
    // drop was never recorded belong to this one.
    let earlier: Option<Uuid> = sqlx::query_scalar(
        "SELECT r.receipt_id FROM phi_access_log_retired r
         WHERE r.partition_name = $1
           AND NOT EXISTS (SELECT 1 FROM deletion_receipts d WHERE d.id = r.receipt_id)
         LIMIT 1",
    )
    .bind(name)
    .fetch_optional(pg.pool())
    .await
    .map_err(classify)?;
    if let Some(earlier) = earlier {
        return Ok(earlier);
    }
    // Usually the month is one run of positions (min, max and count say so from the index);
    // otherwise the runs are found by numbering its positions.
    let (first, last, rows): (Option<i64>, Option<i64>, i64) = sqlx::query_as(sqlx::AssertSqlSafe(
        format!("SELECT min(seq), max(seq), count(*) FROM \"{name}\""),
    ))
    .fetch_one(pg.pool())
    .await
    .map_err(classify)?;
    let runs = match (first, last) {
        (Some(first), Some(last)) if last - first + 1 == rows => {
            format!("SELECT {first}::bigint AS from_seq, {last}::bigint AS to_seq")
        }
        (Some(_), Some(_)) => format!(
            "SELECT min(seq) AS from_seq, max(seq) AS to_seq
             FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS run FROM \"{name}\") s
             GROUP BY run"
        ),
        _ => return Ok(receipt),
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO phi_access_log_retired (from_seq, to_seq, last_hash, partition_name, receipt_id, retired_at)
         SELECT r.from_seq, r.to_seq, l.hash, $1, $2, $3
         FROM ({runs}) r
         JOIN \"{name}\" l ON l.seq = r.to_seq
         ON CONFLICT (from_seq) DO NOTHING"
    )))
    .bind(name)
    .bind(receipt)
    .bind(Utc::now())
    .execute(pg.pool())
    .await
    .map_err(classify)?;
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_tables_are_recognised_by_name_only() {
        assert_eq!(
            month_of("phi_access_log", "phi_access_log_y2020m03"),
            NaiveDate::from_ymd_opt(2020, 3, 1)
        );
        for other in [
            "phi_access_log_retired",
            "phi_access_log_y2020m13",
            "phi_access_log_y20m03",
            "phi_change_history_y2020m03",
        ] {
            assert_eq!(month_of("phi_access_log", other), None, "{other}");
        }
    }
}
