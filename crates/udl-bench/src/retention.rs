//! Retention: a month of the PHI access log (1M entries) dropped by `retention_purge` (chain
//! anchored, detached concurrently, dropped, receipt written) against `DELETE` of the same 1M
//! rows from a table of the same shape and indexes, unpartitioned. Time and the WAL each
//! writes, per round and as medians; the ratio is DELETE over the drop (higher is better).
//! `DELETE` also leaves the space to VACUUM, which the drop gives back at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone as _, Utc};
use udl::jobs::retention::RetentionPurge;
use udl::jobs::{JobRunner, ManualClock, NoProgress};
use udl::postgres::{PgStore, PostgresConfig};
use udl::{Error, ErrorKind, Result, UdlConfig};
use udl_testkit::servers;

/// Entries in the month.
const ROWS: i64 = 1_000_000;

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("retention bench: {what}: {e}"))
}

async fn exec(pg: &PgStore, sql: &str) -> Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pg.pool())
        .await
        .map(drop)
        .map_err(|e| failed(sql, e))
}

/// The server's WAL position, in bytes.
async fn wal_position(pg: &PgStore) -> Result<i64> {
    sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
        .fetch_one(pg.pool())
        .await
        .map_err(|e| failed("wal position", e))
}

/// How long `work` took and how much WAL the server wrote meanwhile.
async fn measured(pg: &PgStore, work: impl AsyncFnOnce() -> Result<()>) -> Result<(Duration, i64)> {
    exec(pg, "CHECKPOINT").await?;
    let before = wal_position(pg).await?;
    let started = Instant::now();
    work().await?;
    let took = started.elapsed();
    Ok((took, wal_position(pg).await? - before))
}

/// The month's rows, generated in `table` (chain positions after `first_seq`).
fn fill(table: &str, first_seq: i64) -> String {
    format!(
        "INSERT INTO {table} (seq, id, occurred_at, actor_id, actor_role, purpose, patient_id,
             entity, record_ids, fields, operation, outcome, request_id, prev_hash, hash)
         SELECT {first_seq} + g + 1, gen_random_uuid(),
                '2015-01-01T00:00:00Z'::timestamptz + g * INTERVAL '2 seconds',
                'fake-clinician', 'clinician', 'treatment', 'fake-patient-' || (g % 1000),
                'session_notes', '[]', '[\"body\"]', 'get', 'allowed', 'fake-req-' || g,
                NULL, sha256(g::text::bytea)
         FROM generate_series(0, {ROWS} - 1) g"
    )
}

/// Runs the comparison `rounds` times (at most 3).
pub async fn run(rounds: usize) -> Result<()> {
    let schema = servers::unique_namespace("bench_retention");
    let vars = [
        ("UDL__POSTGRES__URL".to_owned(), servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA".to_owned(), schema.clone()),
    ];
    let config: UdlConfig =
        udl::config::from_sources(None, vars).map_err(|e| failed("config", e))?;
    let pg = PgStore::connect(config.store::<PostgresConfig>().expect("configured")).await?;
    udl::postgres::models::migrator().up(&pg).await?;
    exec(
        &pg,
        "CREATE TABLE bench_unpartitioned_log (LIKE phi_access_log INCLUDING DEFAULTS);
         ALTER TABLE bench_unpartitioned_log ADD PRIMARY KEY (seq, occurred_at);
         CREATE INDEX ON bench_unpartitioned_log USING brin (occurred_at);
         CREATE INDEX ON bench_unpartitioned_log (patient_id, occurred_at);",
    )
    .await?;
    let job = RetentionPurge::new(pg.clone(), config.retention.clone());
    // Far enough ahead that January 2015 is past six years, and the current month is not.
    let runner = JobRunner::new(
        pg.clone(),
        Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
        )),
    );
    println!(
        "{:<28} {:>10} {:>14} {:>10} {:>14} {:>8} {:>8}",
        "round", "drop_s", "drop_wal_B", "delete_s", "delete_wal_B", "time_x", "wal_x"
    );
    let mut time_ratios = Vec::new();
    let mut wal_ratios = Vec::new();
    for round in 0..rounds.min(3) {
        let first_seq = round as i64 * ROWS;
        exec(&pg, "SELECT udl_access_log_partition('2015-01-01')").await?;
        exec(&pg, &fill("phi_access_log", first_seq)).await?;
        exec(&pg, &fill("bench_unpartitioned_log", first_seq)).await?;
        exec(&pg, "VACUUM ANALYZE bench_unpartitioned_log").await?;
        let (drop_took, drop_wal) = measured(&pg, async || {
            let run = runner.run(&job, false, Arc::new(NoProgress)).await?;
            match run.counts.get("phi_access_log.records_deleted") {
                Some(&n) if n == ROWS as u64 => Ok(()),
                other => Err(failed("the purge", format!("deleted {other:?}"))),
            }
        })
        .await?;
        let (delete_took, delete_wal) = measured(&pg, async || {
            exec(
                &pg,
                "DELETE FROM bench_unpartitioned_log WHERE occurred_at < '2015-02-01T00:00:00Z'",
            )
            .await
        })
        .await?;
        let time_x = delete_took.as_secs_f64() / drop_took.as_secs_f64();
        let wal_x = delete_wal as f64 / drop_wal.max(1) as f64;
        println!(
            "{:<28} {:>10.3} {:>14} {:>10.3} {:>14} {:>8.1} {:>8.1}",
            format!("month_drop_vs_delete#{round}"),
            drop_took.as_secs_f64(),
            drop_wal,
            delete_took.as_secs_f64(),
            delete_wal,
            time_x,
            wal_x
        );
        time_ratios.push(time_x);
        wal_ratios.push(wal_x);
        exec(&pg, "VACUUM bench_unpartitioned_log").await?;
    }
    for ratios in [&mut time_ratios, &mut wal_ratios] {
        ratios.sort_by(f64::total_cmp);
    }
    println!(
        "month_drop_vs_delete median: DELETE takes {:.1}x the time and {:.1}x the WAL of the drop ({ROWS} rows)",
        time_ratios[time_ratios.len() / 2],
        wal_ratios[wal_ratios.len() / 2]
    );
    exec(&pg, &format!("DROP SCHEMA \"{schema}\" CASCADE")).await?;
    Ok(())
}
