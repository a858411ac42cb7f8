//! What a job is: a named, idempotent and resumable piece of maintenance that can be run for
//! real or as a dry run, reporting its progress and its counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use udl_core::Result;

/// Counts a run reports, by name (`partitions_dropped`, `entries_deleted`, ...).
pub type Counts = BTreeMap<String, u64>;

/// Where a job reports how far it is.
pub trait Progress: Send + Sync {
    /// Step `step` has done `done` of `total` (when known).
    fn advanced(&self, step: &str, done: u64, total: Option<u64>);
}

/// Progress nobody watches (the scheduler's runs).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advanced(&self, _step: &str, _done: u64, _total: Option<u64>) {}
}

/// One run of a job, as the job sees it.
#[derive(Clone)]
pub struct JobRun {
    /// The run's id (in `job_runs`; receipts name it).
    pub id: uuid::Uuid,
    /// The instant the run acts as of (the clock's now when it started).
    pub now: DateTime<Utc>,
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Where to report progress.
    pub progress: Arc<dyn Progress>,
}

/// A maintenance job. Running it twice in a row changes nothing the second time; a run cut off
/// halfway is finished by the next.
#[async_trait::async_trait]
pub trait Job: Send + Sync {
    /// Its name (`retention_purge`), as in `[jobs.<name>]` and `udl jobs run NAME`.
    fn name(&self) -> &'static str;

    /// One line on what it does.
    fn description(&self) -> &'static str;

    /// Does its work as of `run.now`, returning its counts.
    async fn run(&self, run: &JobRun) -> Result<Counts>;
}
