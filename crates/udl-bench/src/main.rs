//! `cargo run --release -p udl-bench -- postgres|mongo|redis|cache|scylla|vector|privacy|follow|cdc|bus|gateway|retention [--seconds N] [--rounds N] [--only SCENARIO]`
//!
//! Runs udl and the raw driver doing the same work, with the same pool and concurrency, in
//! one process against the local servers, and prints one line per scenario:
//! `scenario udl_ops_per_s raw_ops_per_s ratio`. Absolute figures on shared machines are
//! noise; the ratio is the figure to keep.

mod bus;
mod cache;
mod cdc;
mod fixture;
mod follow;
mod gateway;
mod measure;
mod mongo;
mod postgres;
mod privacy;
mod privacy_get;
mod redis_ops;
mod retention;
mod scylla;
mod snapshot;
mod vector;

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seconds = 2u64;
    let mut rounds = 6usize;
    let mut only = None;
    let mut target = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--seconds" => {
                seconds = match args.get(i + 1).and_then(|s| s.parse().ok()) {
                    Some(n) if n > 0 => n,
                    _ => return usage(),
                };
                i += 1;
            }
            "--rounds" => {
                rounds = match args.get(i + 1).and_then(|s| s.parse().ok()) {
                    Some(n) if n > 0 => n,
                    _ => return usage(),
                };
                i += 1;
            }
            "--only" => {
                only = match args.get(i + 1) {
                    Some(name) => Some(name.clone()),
                    None => return usage(),
                };
                i += 1;
            }
            name if target.is_none() => target = Some(name.to_owned()),
            _ => return usage(),
        }
        i += 1;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let plan = measure::Plan {
        window: Duration::from_secs(seconds),
        rounds,
        only,
    };
    let outcome = match target.as_deref() {
        Some("postgres") => runtime.block_on(postgres::run(&plan)),
        Some("mongo") => runtime.block_on(mongo::run(&plan)),
        Some("redis") => runtime.block_on(redis_ops::run(&plan)),
        Some("cache") => runtime.block_on(cache::run(&plan)),
        Some("scylla") => runtime.block_on(scylla::run(&plan)),
        Some("privacy") => privacy::run().and_then(|()| runtime.block_on(privacy_get::run(&plan))),
        Some("cdc") => runtime.block_on(cdc::run(&plan)),
        Some("bus") => runtime.block_on(bus::run(&plan)),
        Some("gateway") => runtime.block_on(gateway::run(&plan)),
        Some("retention") => runtime.block_on(retention::run(plan.rounds)),
        Some("follow") => runtime.block_on(follow::run()),
        Some("follow-writer") => runtime.block_on(follow::writer()),
        Some("vector") => {
            vector::run();
            Ok(())
        }
        _ => return usage(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udl-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: udl-bench postgres|mongo|redis|cache|scylla|vector|privacy|follow|cdc|bus|gateway|retention [--seconds N] [--rounds N] [--only SCENARIO]   (start servers with scripts/services up)");
    ExitCode::from(2)
}
