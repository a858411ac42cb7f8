//! `udl jobs`, `udl hold`, `udl retention receipts` end to end, and the scheduler of two
//! `udl serve` processes on one database: each scheduled slot runs once.

use std::time::Duration;

use udl_testkit::{servers, wait};

use crate::cli::{text, udl};
use crate::serve::{sigterm, Daemon};

/// A migrated schema with an empty access-log month from long before retention (2015).
async fn schema_with_an_expired_month() -> (String, udl::postgres::PgStore) {
    let schema = crate::cli::migrated_schema("cli_jobs");
    let pg = crate::cli::store_on(&schema).await;
    sqlx::query("SELECT udl_access_log_partition('2015-01-01')")
        .execute(pg.pool())
        .await
        .expect("an old month");
    (schema, pg)
}

#[tokio::test]
async fn udl_jobs_run_the_purge_a_hold_keeps_a_month_and_receipts_show_both() {
    let (schema, pg) = schema_with_an_expired_month().await;
    let url = servers::postgres_url();
    let env = [
        ("UDL__POSTGRES__URL", url.as_str()),
        ("UDL__POSTGRES__SCHEMA", schema.as_str()),
    ];
    let listed = text(&udl(&["jobs", "list"], &env)).0;
    assert!(
        listed.contains("retention_purge") && listed.contains("never"),
        "{listed}"
    );

    let placed = udl(
        &[
            "hold",
            "place",
            "--class",
            "phi_access_log",
            "--reason",
            "matter 2026-FAKE-9",
            "--actor",
            "test-counsel",
        ],
        &env,
    );
    let (out, err) = text(&placed);
    assert_eq!(placed.status.code(), Some(0), "{out}{err}");
    let hold = out
        .split_whitespace()
        .nth(2)
        .expect("the hold's id is printed")
        .to_owned();
    assert!(text(&udl(&["hold", "list"], &env)).0.contains(&hold));

    let dry = udl(&["jobs", "run", "retention_purge", "--dry-run"], &env);
    let (out, err) = text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("dry run succeeded"), "{out}");
    assert!(
        out.contains("phi_access_log.months_held") && out.contains("1"),
        "{out}"
    );

    let held = udl(&["jobs", "run", "retention_purge"], &env);
    assert_eq!(held.status.code(), Some(0), "{:?}", text(&held));
    let released = udl(&["hold", "release", &hold, "--actor", "test-counsel"], &env);
    assert_eq!(released.status.code(), Some(0), "{:?}", text(&released));
    let dropped = udl(&["jobs", "run", "retention_purge"], &env);
    let (out, _) = text(&dropped);
    assert!(
        out.lines()
            .any(|l| l.contains("phi_access_log.months_dropped") && l.trim_end().ends_with(" 1")),
        "{out}"
    );
    let gone: bool = sqlx::query_scalar("SELECT to_regclass('phi_access_log_y2015m01') IS NULL")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert!(gone);

    let receipts = text(&udl(&["retention", "receipts"], &env)).0;
    let lines: Vec<&str> = receipts.lines().collect();
    assert_eq!(lines.len(), 2, "{receipts}");
    assert!(
        lines[0].contains("held back 0") && lines[0].contains(&hold),
        "{receipts}"
    );
    assert!(
        lines[1].contains("postgres/phi_access_log [2015-01-01 .. 2015-02-01]"),
        "{receipts}"
    );
    let listed = text(&udl(&["jobs", "list"], &env)).0;
    assert!(listed.contains("succeeded"), "{listed}");

    let unknown = udl(&["jobs", "run", "nightly_magic"], &env);
    let (_, err) = text(&unknown);
    assert_ne!(unknown.status.code(), Some(0));
    assert!(err.contains("retention_purge"), "{err}");
    crate::cli::drop_schema(&pg).await;
}

#[tokio::test]
async fn two_udl_serve_processes_never_run_one_scheduled_slot_twice() {
    let (schema, pg) = schema_with_an_expired_month().await;
    let env = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.clone()),
        // Every second, so a few slots pass quickly.
        (
            "UDL__JOBS__RETENTION_PURGE__SCHEDULE",
            "* * * * * *".to_owned(),
        ),
    ];
    let first = Daemon::start(&env);
    let second = Daemon::start(&env);
    let runs: i64 = wait::until("four scheduled runs", Duration::from_secs(60), || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_runs WHERE job = 'retention_purge' AND outcome <> 'running'",
        )
        .fetch_one(pg.pool())
        .await
        .ok()?;
        (n >= 4).then_some(n)
    })
    .await;
    for daemon in [&first, &second] {
        sigterm(daemon.child());
    }
    for daemon in [&first, &second] {
        assert!(
            daemon.logs().contains("job scheduler running"),
            "{}",
            daemon.logs()
        );
    }
    // One row per slot, runs one after another, and the expired month dropped once.
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT slot FROM job_runs WHERE job = 'retention_purge'
                               GROUP BY slot HAVING count(*) > 1) s",
    )
    .fetch_one(pg.pool())
    .await
    .unwrap();
    assert_eq!(twice, 0);
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_runs a JOIN job_runs b ON a.id < b.id
         WHERE a.outcome = 'succeeded' AND b.outcome = 'succeeded'
           AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
    )
    .fetch_one(pg.pool())
    .await
    .unwrap();
    assert_eq!(overlapping, 0, "two runs of the job overlapped");
    let receipts: i64 = sqlx::query_scalar("SELECT count(*) FROM deletion_receipts")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert_eq!(receipts, 1, "the month was dropped once, in {runs} runs");
    drop((first, second));
    crate::cli::drop_schema(&pg).await;
}
