//! udl's jobs: retention declared per data class and carried out with each store's own
//! mechanism (month partitions detached and dropped in PostgreSQL), legal holds that suspend it,
//! deletion receipts that record it, the media-rights prune, and the runner and cron scheduler that run jobs once
//! across every process (a PostgreSQL advisory lock and one history row per scheduled slot).

mod clock;
mod job;
mod media_prune;
pub mod retention;
mod runner;
mod scheduler;

pub use clock::{ManualClock, SystemClock, WallClock};
pub use job::{Counts, Job, JobRun, NoProgress, Progress};
pub use media_prune::MediaRightsPrune;
pub use runner::{JobRunner, RunOutcome, RunRecord, Trigger};
pub use scheduler::Scheduler;
