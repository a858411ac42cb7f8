//! The scheduler inside `udl serve`: each enabled job waits for its next cron slot (UTC) and
//! runs it through the [`JobRunner`], which makes sure one process across every `udl serve` runs
//! a slot. A slot missed while the process was down is not caught up: the next one runs, and
//! every job finishes what an earlier run left undone.

use std::sync::Arc;

use croner::Cron;
use tokio::sync::watch;
use udl_config::JobsConfig;
use udl_core::{Error, ErrorKind, Result};

use crate::job::{Job, NoProgress};
use crate::runner::JobRunner;

/// Jobs and their schedules.
pub struct Scheduler {
    runner: Arc<JobRunner>,
    jobs: Vec<(Arc<dyn Job>, Cron)>,
}

impl Scheduler {
    /// The jobs of `available` that `config` enables, on their schedules; an enabled job that
    /// is not available is an error (its store is not configured).
    pub fn new(
        runner: Arc<JobRunner>,
        config: &JobsConfig,
        available: Vec<Arc<dyn Job>>,
    ) -> Result<Self> {
        let mut jobs = Vec::new();
        for schedule in config.jobs.iter().filter(|j| j.enabled) {
            let Some(job) = available.iter().find(|j| j.name() == schedule.name) else {
                continue;
            };
            let cron = schedule.schedule.parse::<Cron>().map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!("jobs.{}.schedule is not a cron expression", schedule.name),
                )
            })?;
            jobs.push((Arc::clone(job), cron));
        }
        Ok(Scheduler { runner, jobs })
    }

    /// The names of the jobs it runs.
    pub fn job_names(&self) -> Vec<&'static str> {
        self.jobs.iter().map(|(job, _)| job.name()).collect()
    }

    /// Runs every job on its schedule until `stop` turns true; a run in progress is finished.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let tasks: Vec<_> = self
            .jobs
            .into_iter()
            .map(|(job, cron)| {
                tokio::spawn(run_job(Arc::clone(&self.runner), job, cron, stop.clone()))
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

async fn run_job(
    runner: Arc<JobRunner>,
    job: Arc<dyn Job>,
    cron: Cron,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = runner.clock().now();
        let Ok(slot) = cron.find_next_occurrence(&now, false) else {
            tracing::warn!(
                job = job.name(),
                "its schedule has no next slot; not scheduled"
            );
            return;
        };
        let wait = (slot - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        // The clock may stand behind the timer by a moment: the slot is due either way.
        match runner
            .run_slot(job.as_ref(), slot, Arc::new(NoProgress))
            .await
        {
            Ok(Some(run)) => {
                tracing::debug!(job = job.name(), outcome = %run.outcome.as_str(), "scheduled run done")
            }
            Ok(None) => tracing::debug!(job = job.name(), %slot, "slot claimed by another process"),
            Err(e) => tracing::error!(job = job.name(), error = %e, "scheduled run failed"),
        }
        if *stop.borrow() {
            return;
        }
    }
}
