//! `udl jobs`: the maintenance jobs `udl serve`'s scheduler runs (`retention_purge`,
//! `media_rights_prune`). `list` shows each job, its
//! schedule and its last run; `run NAME [--dry-run]` runs one now, with a progress bar per step,
//! once across every process (refused while another process runs it), recorded in the history.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use udl::jobs::retention::RetentionPurge;
use udl::jobs::{Job, JobRunner, MediaRightsPrune, Progress, SystemClock};
use udl::mongo::{MongoConfig, MongoStore};
use udl::postgres::PgStore;
use udl::{Error, ErrorKind, Result, UdlConfig};

use crate::progress_bar::ProgressBar;

/// Every job udl can run with `config`'s stores (the media-rights prune needs MongoDB).
pub fn available(
    config: &UdlConfig,
    pg: &PgStore,
    mongo: Option<&MongoStore>,
) -> Vec<Arc<dyn Job>> {
    let purge = RetentionPurge::new(pg.clone(), config.retention.clone());
    match mongo {
        Some(mongo) => vec![
            Arc::new(purge.with_mongo(mongo.clone())),
            Arc::new(MediaRightsPrune::new(pg.clone(), mongo.clone())),
        ],
        None => vec![Arc::new(purge)],
    }
}

/// PostgreSQL, and MongoDB when it is configured.
pub async fn stores(config: &UdlConfig) -> Result<(PgStore, Option<MongoStore>)> {
    let pg = crate::audit::postgres_store(config).await?;
    let mongo = match config.store::<MongoConfig>() {
        Some(mongo) => Some(MongoStore::connect(mongo).await?),
        None => None,
    };
    Ok((pg, mongo))
}

/// `udl jobs list`.
pub async fn list(config: &UdlConfig) -> Result<ExitCode> {
    let (pg, mongo) = stores(config).await?;
    let runner = JobRunner::new(pg.clone(), Arc::new(SystemClock));
    println!(
        "{:<18} {:<16} {:<8} {:<25} {:<10} {:>9}  counts",
        "JOB", "SCHEDULE", "ENABLED", "LAST RUN", "OUTCOME", "SECONDS"
    );
    for job in available(config, &pg, mongo.as_ref()) {
        let schedule = config.jobs.job(job.name());
        let last = runner
            .history(Some(job.name()), 1)
            .await?
            .into_iter()
            .next();
        let (started, outcome, seconds, counts) = match &last {
            Some(run) => (
                run.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                run.outcome.as_str().to_owned(),
                run.finished_at
                    .map(|end| format!("{:.1}", (end - run.started_at).as_seconds_f64()))
                    .unwrap_or_default(),
                counts_text(&run.counts),
            ),
            None => ("never".into(), String::new(), String::new(), String::new()),
        };
        println!(
            "{:<18} {:<16} {:<8} {:<25} {:<10} {:>9}  {counts}",
            job.name(),
            schedule.map_or("-", |s| s.schedule.as_str()),
            schedule.is_some_and(|s| s.enabled),
            started,
            outcome,
            seconds,
        );
        println!("  {}", job.description());
    }
    Ok(ExitCode::SUCCESS)
}

fn counts_text(counts: &udl::jobs::Counts) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `udl jobs run NAME [--dry-run]`.
pub async fn run(config: &UdlConfig, name: &str, dry_run: bool) -> Result<ExitCode> {
    let (pg, mongo) = stores(config).await?;
    let jobs = available(config, &pg, mongo.as_ref());
    let job = jobs.iter().find(|j| j.name() == name).ok_or_else(|| {
        let known: Vec<&str> = jobs.iter().map(|j| j.name()).collect();
        Error::new(
            ErrorKind::InvalidInput,
            format!("no job {name}; known: {}", known.join(", ")),
        )
    })?;
    let runner = JobRunner::new(pg, Arc::new(SystemClock));
    let progress = Arc::new(Bars::default());
    let record = runner
        .run(
            job.as_ref(),
            dry_run,
            Arc::clone(&progress) as Arc<dyn Progress>,
        )
        .await;
    progress.end();
    let record = record?;
    let what = if dry_run { "dry run" } else { "run" };
    println!(
        "{name} {what} {} ({}) in {:.1}s",
        record.outcome.as_str(),
        record.id,
        record
            .finished_at
            .map_or(0.0, |end| (end - record.started_at).as_seconds_f64())
    );
    for (count, value) in &record.counts {
        println!("  {count:<40} {value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One progress bar per step, on standard error.
#[derive(Default)]
struct Bars(Mutex<Option<(ProgressBar, u64)>>);

impl Bars {
    fn end(&self) {
        if let Ok(mut bar) = self.0.lock() {
            if let Some((bar, done)) = bar.take() {
                bar.finish(done);
            }
        }
    }
}

impl Progress for Bars {
    fn advanced(&self, step: &str, done: u64, total: Option<u64>) {
        let Ok(mut current) = self.0.lock() else {
            return;
        };
        if current.as_ref().is_some_and(|(bar, _)| bar.label != step) {
            if let Some((bar, done)) = current.take() {
                bar.finish(done);
            }
        }
        let (bar, shown) = current.get_or_insert_with(|| {
            (
                ProgressBar {
                    label: step.to_owned(),
                    total,
                },
                0,
            )
        });
        *shown = done;
        bar.show(done);
    }
}
