//! `udl cdc`: the change relay. `run` streams (or stands by) until SIGTERM, `status` shows the
//! slot and the leader's report, `check` compares every registered entity's table with its
//! declaration before anything runs, `ledger` shows what was done to an event's fields, and
//! `snapshot` copies a table's existing rows through the relay.

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};
use udl::{AccessContext, DataLayer, Error, ErrorKind, Purpose, Result, Role, UdlConfig};

use crate::commands::closing;
use crate::progress_bar::ProgressBar;

/// `udl cdc run`: the relay until SIGTERM or SIGINT; it acknowledges only what is durable.
pub async fn run(config: &UdlConfig) -> Result<ExitCode> {
    closing(DataLayer::connect(config).await?, async |data| {
        let relay = data.configured_relay(config).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::Config,
                format!("cannot listen for signals: {}", e.kind()),
            )
        };
        let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            let _ = stop.send(true);
        });
        println!("udl cdc: relay of slot {} started", relay.settings().slot);
        relay.run(stopped).await?;
        println!("udl cdc: stopped");
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// `udl cdc status`: exit 0 when the slot exists and no relay reports a halt, 1 otherwise.
pub async fn status(config: &UdlConfig) -> Result<ExitCode> {
    let pg = crate::audit::postgres_store(config).await?;
    let slot = udl::relay_settings(config, pg.schema()).slot;
    let status = udl::sync::slot::status(&pg, &slot).await?;
    let snapshots = udl::sync::snapshot::unfinished(&pg, &slot).await?;
    pg.pool().close().await;
    for s in &snapshots {
        println!(
            "snapshot {} of {}: {}, {} of {} rows read",
            s.id, s.entity, s.state, s.rows_read, s.total_rows
        );
    }
    println!("slot: {}", status.slot);
    if !status.exists {
        println!("state: no slot (no relay has run yet)");
        return Ok(ExitCode::FAILURE);
    }
    println!("streaming: {}", if status.active { "yes" } else { "no" });
    println!(
        "confirmed position: {}",
        status.confirmed_lsn.as_deref().unwrap_or("-")
    );
    match status.lag_bytes {
        Some(bytes) => println!("lag: {bytes} bytes"),
        None => println!("lag: unknown"),
    }
    if let Some(wal) = &status.wal_status {
        println!("wal status: {wal}");
    }
    let Some(relay) = &status.relay else {
        println!("state: unknown (no leader has reported)");
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "state: {} (by {}, at {})",
        relay.state,
        relay.holder,
        relay.updated_at.to_rfc3339()
    );
    if let Some(reason) = &relay.reason {
        println!("halted because: {reason}");
    }
    Ok(
        if relay.state == "halted" || status.wal_status.as_deref() == Some("lost") {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// `udl cdc check`: exit 0 when every registered table matches its declaration.
pub async fn check(config: &UdlConfig) -> Result<ExitCode> {
    closing(DataLayer::connect(config).await?, async |data| {
        let problems = data.configured_relay(config).await?.check().await?;
        for problem in &problems {
            println!("{problem}");
        }
        if problems.is_empty() {
            println!("every captured table matches its entity's declaration");
            Ok(ExitCode::SUCCESS)
        } else {
            Ok(ExitCode::FAILURE)
        }
    })
    .await
}

/// `udl cdc ledger --event ID --actor ACTOR`: the ledger entries of one event, read as an
/// auditor (the read is in the PHI access log).
pub async fn ledger(config: &UdlConfig, actor: &str, event: &str) -> Result<ExitCode> {
    closing(DataLayer::connect(config).await?, async |data| {
        let ctx = AccessContext::new(actor, Role::Auditor, Purpose::Operations)?;
        let entries = data
            .redaction_ledger()?
            .read(&ctx, data.audit_writer()?, event)
            .await?;
        if entries.is_empty() {
            println!("no ledger entry for event {event}");
            return Ok(ExitCode::FAILURE);
        }
        let mut intact = true;
        for e in &entries {
            intact &= e.intact;
            let line = serde_json::json!({
                "event_id": e.event_id,
                "event_time": e.event_time.to_rfc3339(),
                "type": e.event_type,
                "subject": e.subject,
                "actions": e.actions,
                "seal": if e.intact { "intact" } else { "BROKEN" },
            });
            println!("{line}");
        }
        Ok(if intact {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
    .await
}

/// How often `udl cdc snapshot` looks at its snapshot's progress.
const SNAPSHOT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// `udl cdc snapshot ENTITY`: queues a snapshot for the relay and follows it to its end with
/// a progress bar; exit 0 when it is done, 1 when it failed.
pub async fn snapshot(
    config: &UdlConfig,
    entity: &str,
    conditions: &[udl::sync::snapshot::Condition],
    chunk_rows: u32,
    no_wait: bool,
) -> Result<ExitCode> {
    closing(DataLayer::connect(config).await?, async |data| {
        let id = data
            .request_snapshot(config, entity, conditions, chunk_rows)
            .await?;
        let queued = data.snapshot_progress(id).await?;
        println!(
            "snapshot {id} of {entity}: {} rows to copy",
            queued.total_rows
        );
        if no_wait {
            return Ok(ExitCode::SUCCESS);
        }
        let bar = ProgressBar {
            label: format!("snapshot {id} of {entity}, rows"),
            total: Some(queued.total_rows.max(0) as u64),
        };
        let mut told_waiting = false;
        let progress = loop {
            let progress = data.snapshot_progress(id).await?;
            if progress.state == "pending" && !told_waiting {
                eprintln!("waiting for the change relay (udl serve or udl cdc run, with [cdc]) to take it");
                told_waiting = true;
            }
            if progress.ended() {
                bar.finish(progress.rows_read.max(0) as u64);
                break progress;
            }
            bar.show(progress.rows_read.max(0) as u64);
            tokio::time::sleep(SNAPSHOT_POLL).await;
        };
        if progress.state == "failed" {
            eprintln!(
                "snapshot {id} failed: {}",
                progress.reason.as_deref().unwrap_or("no reason recorded")
            );
            return Ok(ExitCode::FAILURE);
        }
        let seconds = match (progress.started_at, progress.finished_at) {
            (Some(start), Some(end)) => (end - start).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        println!(
            "snapshot {id} of {entity} done: {} rows read in {} chunks, {} sent as snapshot events ({} changed meanwhile and went by the stream), {seconds:.1} s",
            progress.rows_read,
            progress.chunks,
            progress.rows_sent,
            progress.rows_read - progress.rows_sent
        );
        Ok(ExitCode::SUCCESS)
    })
    .await
}
