//! Snapshots (batch sync). `snapshot_vs_copy`: the rows of `bench_visits` (at least 200k) read
//! by a snapshot through the relay (chunks between watermarks, each row sanitized, tokens
//! kept, the ledger written) into a null sink, and into ScyllaDB, against `COPY bench_visits
//! TO STDOUT` drained into nothing on the same server; rows per second and the ratio.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use udl::{DataLayer, Error, ErrorKind, RelaySinks, Result, UdlConfig};

use crate::cdc::failed;

/// Rows the table holds at least for the comparison.
const ROWS: i64 = 200_000;

/// Rows per chunk (udl's default).
const CHUNK_ROWS: u32 = udl::sync::snapshot::DEFAULT_CHUNK_ROWS;

/// Runs the comparison `rounds` times (at most 3) for each sink; medians printed.
pub async fn measure(data: &DataLayer, config: &UdlConfig, rounds: usize) -> Result<()> {
    let pg = data.postgres()?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_visits")
        .fetch_one(pg.pool())
        .await
        .map_err(|e| failed("count", e))?;
    if have < ROWS {
        sqlx::query(
            "INSERT INTO bench_visits SELECT gen_random_uuid(), 'fake-patient-' || (g % 1000),
                 'fake note ' || g, 'topic-' || (g % 7), g FROM generate_series(1, $1) g",
        )
        .bind(ROWS - have)
        .execute(pg.pool())
        .await
        .map_err(|e| failed("fill", e))?;
    }
    let rows = have.max(ROWS) as f64;
    for (name, sinks) in [
        ("snapshot_null_sink_vs_copy", RelaySinks::Null),
        ("snapshot_scylla_vs_copy", RelaySinks::Configured),
    ] {
        let mut ratios = Vec::new();
        for round in 0..rounds.min(3) {
            let raw = rows / copy_out(data).await?.as_secs_f64();
            let udl = rows
                / snapshot(data, config, sinks, &format!("s{round}"))
                    .await?
                    .as_secs_f64();
            println!(
                "{:<30} {:>12.0}/s {:>12.0}/s {:>8.3}",
                format!("{name}#{round}"),
                udl,
                raw,
                udl / raw
            );
            ratios.push(udl / raw);
        }
        ratios.sort_by(f64::total_cmp);
        println!("{name} median ratio {:.3}", ratios[ratios.len() / 2]);
    }
    Ok(())
}

/// `COPY bench_visits TO STDOUT`, every byte read and dropped.
async fn copy_out(data: &DataLayer) -> Result<Duration> {
    let mut conn = data
        .postgres()?
        .pool()
        .acquire()
        .await
        .map_err(|e| failed("connection", e))?;
    let started = Instant::now();
    let mut stream = conn
        .copy_out_raw("COPY bench_visits TO STDOUT")
        .await
        .map_err(|e| failed("copy", e))?;
    let mut bytes = 0usize;
    while let Some(chunk) = stream.try_next().await.map_err(|e| failed("copy", e))? {
        bytes += chunk.len();
    }
    if bytes == 0 {
        return Err(failed("copy", "no rows"));
    }
    Ok(started.elapsed())
}

/// A relay of its own slot snapshotting the whole table into `sinks`: from the request to
/// the snapshot recorded done.
async fn snapshot(
    data: &DataLayer,
    config: &UdlConfig,
    sinks: RelaySinks,
    suffix: &str,
) -> Result<Duration> {
    let pg = data.postgres()?;
    let mut settings = udl::sync::RelaySettings::for_schema(pg.schema());
    settings.slot = format!("{}_{suffix}", settings.slot);
    settings.publication = format!("{}_pub", settings.slot);
    settings.heartbeat = Duration::from_millis(100);
    let mut slot_config = config.clone();
    slot_config.cdc.get_or_insert_with(Default::default).slot = Some(settings.slot.clone());
    let relay = data
        .change_relay(&slot_config, settings.clone(), sinks)
        .await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    let started = Instant::now();
    let id = data
        .request_snapshot(&slot_config, "bench_visits", &[], CHUNK_ROWS)
        .await?;
    let progress = loop {
        let progress = data.snapshot_progress(id).await?;
        if progress.ended() {
            break progress;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let took = started.elapsed();
    let _ = stop.send(true);
    running.await.map_err(|e| failed("relay task", e))??;
    udl::sync::slot::drop_capture(pg, &settings.slot, &settings.publication).await?;
    if progress.state != "done" {
        return Err(Error::new(
            ErrorKind::Internal,
            format!("the snapshot failed: {:?}", progress.reason),
        ));
    }
    Ok(took)
}
