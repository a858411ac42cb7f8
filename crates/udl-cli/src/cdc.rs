//! `udl cdc`: the change relay. `run` streams (or stands by) until SIGTERM, `status` shows the
//! slot and the leader's report, `check` compares every registered entity's table with its
//! declaration before anything runs, and `ledger` shows what was done to an event's fields.

use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};
use udl::{AccessContext, DataLayer, Error, ErrorKind, Purpose, Result, Role, UdlConfig};

use crate::commands::closing;

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
    pg.pool().close().await;
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
