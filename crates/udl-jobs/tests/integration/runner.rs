//! The job runner: a scheduled slot runs once however many processes reach it, a manual run is
//! refused while another runs the job, and every run is recorded with its outcome and counts.

use std::sync::Arc;

use chrono::{TimeZone as _, Utc};
use tokio::sync::Notify;
use udl_core::{Error, ErrorKind, Result};
use udl_jobs::{Counts, Job, JobRun, NoProgress, RunOutcome};

use crate::common::{drop_schema, migrated_store, runner_at};

/// A job that waits to be let go, then counts one.
struct Gate {
    entered: Notify,
    release: Notify,
}

#[async_trait::async_trait]
impl Job for Gate {
    fn name(&self) -> &'static str {
        "test_gate"
    }

    fn description(&self) -> &'static str {
        "waits until the test lets it go"
    }

    async fn run(&self, _run: &JobRun) -> Result<Counts> {
        self.entered.notify_one();
        self.release.notified().await;
        Ok(Counts::from([("gates".to_owned(), 1)]))
    }
}

/// A job that always fails.
struct Broken;

#[async_trait::async_trait]
impl Job for Broken {
    fn name(&self) -> &'static str {
        "test_broken"
    }

    fn description(&self) -> &'static str {
        "fails"
    }

    async fn run(&self, _run: &JobRun) -> Result<Counts> {
        Err(Error::new(ErrorKind::Unavailable, "the test store is away"))
    }
}

#[tokio::test]
async fn a_slot_runs_once_and_a_running_job_refuses_a_second_run() {
    let store = migrated_store().await;
    let slot = Utc.with_ymd_and_hms(2026, 12, 8, 3, 15, 0).unwrap();
    // Two runners, as two processes would have (each its own pool and lock connection).
    let other_store = udl_postgres::PgStore::connect(&crate::common::same_schema(&store))
        .await
        .expect("second pool");
    let (first, _) = runner_at(&store, slot);
    let (second, _) = runner_at(&other_store, slot);
    let gate = Arc::new(Gate {
        entered: Notify::new(),
        release: Notify::new(),
    });

    let running = {
        let gate = Arc::clone(&gate);
        tokio::spawn(async move {
            first
                .run_slot(gate.as_ref(), slot, Arc::new(NoProgress))
                .await
        })
    };
    gate.entered.notified().await;
    // The same slot, reached by the other process while the first runs it: already claimed.
    let again = second
        .run_slot(gate.as_ref(), slot, Arc::new(NoProgress))
        .await
        .expect("claim checked");
    assert!(again.is_none());
    // A manual run meanwhile is refused: the job's lock is held.
    let refused = second
        .run(gate.as_ref(), false, Arc::new(NoProgress))
        .await
        .expect_err("refused while running");
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    // The next slot, reached while the job still runs: recorded as skipped.
    let next = slot + chrono::Duration::days(1);
    let skipped = second
        .run_slot(gate.as_ref(), next, Arc::new(NoProgress))
        .await
        .expect("run recorded")
        .expect("the next slot is free");
    assert_eq!(skipped.outcome, RunOutcome::Skipped);

    gate.release.notify_one();
    let ran = running
        .await
        .expect("task")
        .expect("run recorded")
        .expect("the slot was free");
    assert_eq!(ran.outcome, RunOutcome::Succeeded);
    assert_eq!(ran.slot, Some(slot));
    assert_eq!(ran.counts.get("gates"), Some(&1));
    assert!(ran.finished_at.is_some_and(|end| end >= ran.started_at));

    // Once it is done, a manual run goes ahead (the lock went with the run's connection).
    let (manual_runner, _) = runner_at(&other_store, slot);
    let manual = {
        let gate = Arc::clone(&gate);
        tokio::spawn(async move {
            manual_runner
                .run(gate.as_ref(), true, Arc::new(NoProgress))
                .await
        })
    };
    gate.entered.notified().await;
    gate.release.notify_one();
    let manual = manual.await.expect("task").expect("manual run");
    assert_eq!((manual.trigger.as_str(), manual.dry_run), ("manual", true));

    let (history_runner, _) = runner_at(&store, slot);
    let history = history_runner.history(Some("test_gate"), 10).await.unwrap();
    let mut outcomes: Vec<(&str, Option<chrono::DateTime<Utc>>)> = history
        .iter()
        .map(|r| (r.outcome.as_str(), r.slot))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            ("skipped", Some(next)),
            ("succeeded", None),
            ("succeeded", Some(slot))
        ]
    );
    other_store.pool().close().await;
    drop_schema(&store).await;
}

#[tokio::test]
async fn a_failed_run_is_recorded_with_its_error() {
    let store = migrated_store().await;
    let (runner, _) = runner_at(&store, Utc::now());
    let err = runner
        .run(&Broken, false, Arc::new(NoProgress))
        .await
        .expect_err("fails");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let history = runner.history(Some("test_broken"), 5).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, RunOutcome::Failed);
    assert!(history[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("the test store is away")));
    drop_schema(&store).await;
}
