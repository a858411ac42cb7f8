//! Running a job once across every process: a session advisory lock (named after the job) held
//! on a connection of the run's own for as long as it runs, so a process that dies releases it;
//! for scheduled runs, one `job_runs` row per slot, so a slot two processes both reach runs once.
//! Every run is recorded with its outcome, counts and duration.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use sqlx::{Connection as _, PgConnection};
use udl_core::{text_enum, Error, ErrorKind, Result};
use udl_metrics::Metrics;
use udl_postgres::PgStore;
use uuid::Uuid;

use crate::clock::WallClock;
use crate::job::{Counts, Job, JobRun, Progress};

text_enum! {
    /// How a run ended.
    pub enum RunOutcome {
        /// Still running (or its process died: the lock was released with it).
        Running => "running",
        /// Done.
        Succeeded => "succeeded",
        /// Stopped by an error (its message in the record).
        Failed => "failed",
        /// Not run: another process was running the job.
        Skipped => "skipped",
    }
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler, for the slot at this instant.
    Schedule(DateTime<Utc>),
    /// `udl jobs run` or a direct call.
    Manual,
}

/// One run, as recorded in `job_runs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// Its id.
    pub id: Uuid,
    /// The job.
    pub job: String,
    /// The scheduled slot it ran for (none for a manual run).
    pub slot: Option<DateTime<Utc>>,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// Whether it only reported what it would do.
    pub dry_run: bool,
    /// The process that ran it (`host:pid`).
    pub runner: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// What it counted.
    pub counts: Counts,
    /// Why it failed.
    pub error: Option<String>,
}

/// Runs jobs, recording each run.
pub struct JobRunner {
    pg: PgStore,
    clock: Arc<dyn WallClock>,
    runner: String,
    metrics: Option<Arc<Metrics>>,
}

fn classify(e: sqlx::Error) -> Error {
    udl_postgres::classify(&e, "jobs")
}

/// The advisory lock key of job `name` in `schema` (advisory locks are per database, and one
/// database may hold several deployments' schemas; prefixed apart from every other udl lock).
fn lock_key(schema: &str, name: &str) -> i64 {
    let digest = Sha256::digest(format!("udl.job:{schema}:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

type RunRow = (
    Uuid,
    String,
    Option<DateTime<Utc>>,
    String,
    bool,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    serde_json::Value,
    Option<String>,
);

fn run_record(row: RunRow) -> Result<RunRecord> {
    Ok(RunRecord {
        id: row.0,
        job: row.1,
        slot: row.2,
        trigger: row.3,
        dry_run: row.4,
        runner: row.5,
        started_at: row.6,
        finished_at: row.7,
        outcome: RunOutcome::from_text(&row.8).ok_or_else(|| {
            Error::new(
                ErrorKind::DataCorruption,
                "a job run has an unknown outcome",
            )
        })?,
        counts: serde_json::from_value(row.9).unwrap_or_default(),
        error: row.10,
    })
}

const COLUMNS: &str =
    "id, job, slot, trigger, dry_run, runner, started_at, finished_at, outcome, counts, error";

impl JobRunner {
    /// A runner recording runs in `pg`, reading time from `clock`.
    pub fn new(pg: PgStore, clock: Arc<dyn WallClock>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        JobRunner {
            pg,
            clock,
            runner: format!("{host}:{}", std::process::id()),
            metrics: None,
        }
    }

    /// Reports every run to `metrics` (`udl_job_runs`, `udl_job_duration_seconds`).
    pub fn reporting_to(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The clock runs act as of.
    pub fn clock(&self) -> &Arc<dyn WallClock> {
        &self.clock
    }

    /// Runs `job` now; refused (conflict) while another process runs it.
    pub async fn run(
        &self,
        job: &dyn Job,
        dry_run: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<RunRecord> {
        let mut lock = self.lock_connection().await?;
        if !try_lock(&mut lock, self.pg.schema(), job.name()).await? {
            lock.close().await.ok();
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("job {} is running in another process", job.name()),
            ));
        }
        // A manual run's row has no slot, so it never conflicts.
        let id = self
            .start(job.name(), Trigger::Manual, dry_run)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a manual job run was not recorded"))?;
        let record = self.execute(job, id, dry_run, progress).await;
        unlock(lock, job.name()).await;
        record
    }

    /// Runs `job` for its scheduled `slot` unless a process already claimed that slot (then
    /// `None`); a slot reached while another process runs the job is recorded as skipped.
    pub async fn run_slot(
        &self,
        job: &dyn Job,
        slot: DateTime<Utc>,
        progress: Arc<dyn Progress>,
    ) -> Result<Option<RunRecord>> {
        let Some(id) = self
            .start(job.name(), Trigger::Schedule(slot), false)
            .await?
        else {
            return Ok(None);
        };
        let mut lock = self.lock_connection().await?;
        if !try_lock(&mut lock, self.pg.schema(), job.name()).await? {
            lock.close().await.ok();
            return self
                .finish(
                    id,
                    job.name(),
                    RunOutcome::Skipped,
                    &Counts::new(),
                    None,
                    0.0,
                )
                .await
                .map(Some);
        }
        let record = self.execute(job, id, false, progress).await;
        unlock(lock, job.name()).await;
        record.map(Some)
    }

    /// The latest `limit` runs, of `job` or of every job, newest first.
    pub async fn history(&self, job: Option<&str>, limit: i64) -> Result<Vec<RunRecord>> {
        let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE ($1::text IS NULL OR job = $1)
             ORDER BY started_at DESC, id LIMIT $2"
        )))
        .bind(job)
        .bind(limit)
        .fetch_all(self.pg.pool())
        .await
        .map_err(classify)?;
        rows.into_iter().map(run_record).collect()
    }

    async fn lock_connection(&self) -> Result<PgConnection> {
        PgConnection::connect_with(&self.pg.pool().connect_options())
            .await
            .map_err(classify)
    }

    /// Records the run as started; `None` when its slot was already claimed.
    async fn start(&self, job: &str, trigger: Trigger, dry_run: bool) -> Result<Option<Uuid>> {
        let (slot, trigger) = match trigger {
            Trigger::Schedule(at) => (Some(at), "schedule"),
            Trigger::Manual => (None, "manual"),
        };
        sqlx::query_scalar(
            "INSERT INTO job_runs (id, job, slot, trigger, dry_run, runner, started_at, outcome, counts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', '{}')
             ON CONFLICT (job, slot) DO NOTHING RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(job)
        .bind(slot)
        .bind(trigger)
        .bind(dry_run)
        .bind(&self.runner)
        .bind(Utc::now())
        .fetch_optional(self.pg.pool())
        .await
        .map_err(classify)
    }

    async fn execute(
        &self,
        job: &dyn Job,
        id: Uuid,
        dry_run: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<RunRecord> {
        let run = JobRun {
            id,
            now: self.clock.now(),
            dry_run,
            progress,
        };
        let started = Instant::now();
        let outcome = job.run(&run).await;
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(counts) => {
                tracing::info!(
                    job = job.name(),
                    dry_run,
                    seconds = took,
                    ?counts,
                    "job ran"
                );
                self.finish(id, job.name(), RunOutcome::Succeeded, &counts, None, took)
                    .await
            }
            Err(e) => {
                tracing::error!(job = job.name(), error = %e, "job failed");
                let error = e.to_string();
                self.finish(
                    id,
                    job.name(),
                    RunOutcome::Failed,
                    &Counts::new(),
                    Some(&error),
                    took,
                )
                .await?;
                Err(e)
            }
        }
    }

    async fn finish(
        &self,
        id: Uuid,
        job: &'static str,
        outcome: RunOutcome,
        counts: &Counts,
        error: Option<&str>,
        took: f64,
    ) -> Result<RunRecord> {
        if let Some(metrics) = &self.metrics {
            metrics.observe_job_run(job, outcome.as_str(), took);
        }
        let row: RunRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE job_runs SET finished_at = $2, outcome = $3, counts = $4, error = $5
             WHERE id = $1 RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(Utc::now())
        .bind(outcome.as_str())
        .bind(serde_json::to_value(counts).unwrap_or_default())
        .bind(error)
        .fetch_one(self.pg.pool())
        .await
        .map_err(classify)?;
        run_record(row)
    }
}

async fn try_lock(conn: &mut PgConnection, schema: &str, job: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(schema, job))
        .fetch_one(conn)
        .await
        .map_err(classify)
}

/// Releases the job's lock by closing its connection (which would release it anyway).
async fn unlock(conn: PgConnection, job: &str) {
    if let Err(e) = conn.close().await {
        tracing::warn!(job, error = %e, "closing a job's lock connection failed; the server releases the lock when it notices");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_of_each_schema_has_its_own_lock_key() {
        assert_ne!(
            lock_key("udl", "retention_purge"),
            lock_key("udl", "media_rights_prune")
        );
        assert_ne!(
            lock_key("udl", "retention_purge"),
            lock_key("udl2", "retention_purge")
        );
        assert_eq!(
            lock_key("udl", "retention_purge"),
            lock_key("udl", "retention_purge")
        );
    }
}
