//! Throughput measurement: the same closed loop for udl and for the raw driver.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fixture::CONCURRENCY;

/// What to run: measurement window per side and round, rounds, and optionally one scenario.
pub struct Plan {
    /// Length of one measurement of one side.
    pub window: Duration,
    /// Alternating udl/raw rounds per scenario.
    pub rounds: usize,
    /// Run only the scenario with this name.
    pub only: Option<String>,
}

impl Plan {
    /// Whether `scenario` is to be run.
    pub fn wants(&self, scenario: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == scenario)
    }
}

/// Operations per second of `op` run by `concurrency` tasks in a closed loop for `window`.
/// `op` gets a per-call sequence number.
pub async fn throughput<F, Fut>(concurrency: usize, window: Duration, op: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    op(task as u64 * 1_000_000_000 + done).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("benchmark task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Runs udl and raw alternately `rounds` times each, after one uncounted warm-up of each
/// (connections, prepared statements, plans), and returns the mean ops/s of each. The side
/// that goes first alternates, so drift on a shared machine hits both sides alike.
pub async fn compare<U, R, UF, RF>(rounds: usize, mut udl: U, mut raw: R) -> (f64, f64)
where
    U: FnMut() -> UF,
    R: FnMut() -> RF,
    UF: Future<Output = f64>,
    RF: Future<Output = f64>,
{
    udl().await;
    raw().await;
    let (mut u, mut r) = (0.0, 0.0);
    for round in 0..rounds {
        if round % 2 == 0 {
            u += udl().await;
            r += raw().await;
        } else {
            r += raw().await;
            u += udl().await;
        }
    }
    (u / rounds as f64, r / rounds as f64)
}

/// Runs scenario `name` unless the plan leaves it out: `udl` and `raw` are the same work,
/// each a closed-loop operation given a sequence number, compared as in [`compare`] with
/// [`CONCURRENCY`] tasks; prints the scenario's line.
pub async fn scenario<U, UF, R, RF>(plan: &Plan, name: &str, udl: U, raw: R)
where
    U: Fn(u64) -> UF + Clone + Send + Sync + 'static,
    UF: Future<Output = ()> + Send,
    R: Fn(u64) -> RF + Clone + Send + Sync + 'static,
    RF: Future<Output = ()> + Send,
{
    if !plan.wants(name) {
        return;
    }
    let (u, r) = compare(
        plan.rounds,
        || throughput(CONCURRENCY, plan.window, udl.clone()),
        || throughput(CONCURRENCY, plan.window, raw.clone()),
    )
    .await;
    report(name, u, r);
}

/// Prints the column heads of [`report`] lines.
pub fn header() {
    println!(
        "{:<24} {:>12} {:>12} {:>6}",
        "scenario", "udl_ops/s", "raw_ops/s", "ratio"
    );
}

/// Prints one result line.
pub fn report(scenario: &str, udl: f64, raw: f64) {
    println!("{scenario:<24} {udl:>12.0} {raw:>12.0} {:>6.3}", udl / raw);
}

/// CPU time (user and system, every thread) this process has used so far: what getrusage
/// reports, read from `/proc/self/stat` (in clock ticks of 10 ms; windows of seconds make that
/// fine enough).
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th.
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// CPU time spent and operations done, over several measurements.
#[derive(Default)]
pub struct CpuTally {
    cpu: Duration,
    ops: f64,
}

impl CpuTally {
    /// Client CPU microseconds per operation.
    pub fn micros_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1.0)
    }
}

/// [`throughput`], adding the process's CPU time and the operations done to `tally`.
pub async fn throughput_tallied<F, Fut>(
    concurrency: usize,
    window: Duration,
    op: F,
    tally: Arc<std::sync::Mutex<CpuTally>>,
) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (cpu, started) = (cpu_time(), Instant::now());
    let ops_per_s = throughput(concurrency, window, op).await;
    let mut tally = tally.lock().expect("tally lock");
    tally.cpu += cpu_time() - cpu;
    tally.ops += ops_per_s * started.elapsed().as_secs_f64();
    ops_per_s
}
