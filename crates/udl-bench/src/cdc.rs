//! Change data capture. `relay_vs_pg_recvlogical`: the same 200k changes (a table with a
//! tokenized PHI field, a stripped PII field and plain ones) drained from twin slots, by
//! `pg_recvlogical -P pgoutput` into /dev/null and by the relay sanitizing into a null sink
//! (ledger and vault written as always); the ratio is relay rate over pg_recvlogical's.
//! `commit_to_scylla_<rate>`: single-row commits at 1k and 5k per second with the relay writing
//! to ScyllaDB; latency from the commit (PostgreSQL's commit time) to the event being durable
//! in ScyllaDB's `ce_events` (and the ledger), p50 and p99; `commit_to_null_sink_5000_per_s` is
//! the same without ScyllaDB (the relay's own share). `commit_to_python_consumer_1000_per_s`:
//! the same commits with ScyllaDB and the NATS bus, from the commit to the Python consumer of
//! `examples/consumers` receiving the event (pushed, as a live service consumes).
//! `snapshot_vs_copy`: see `snapshot.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use udl::postgres::{Migration, Migrator, PgStore};
use udl::sync::{Relay, RelaySettings, RelayState};
use udl::{DataLayer, Entity, Error, ErrorKind, RelaySinks, Result, UdlConfig};
use udl_testkit::servers;
use uuid::Uuid;

/// A captured row: what the sanitizer has to do for each change.
#[derive(Entity, Clone, PartialEq)]
#[udl(table = "bench_visits", store = "postgres")]
pub struct BenchVisit {
    #[udl(id, internal)]
    pub id: Uuid,
    #[udl(
        phi,
        tokenize,
        plaintext = "benchmark rows hold fake values in the clear"
    )]
    pub patient_ref: String,
    #[udl(pii, plaintext = "benchmark rows hold fake values in the clear")]
    pub note: String,
    #[udl(public)]
    pub topic: String,
    #[udl(internal)]
    pub minutes: i64,
}

const DDL: &str = "CREATE TABLE bench_visits (id UUID PRIMARY KEY, patient_ref TEXT NOT NULL,
    note TEXT NOT NULL, topic TEXT NOT NULL, minutes BIGINT NOT NULL)";

const CHANGES: i64 = 200_000;
const PER_TRANSACTION: i64 = 100;

pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}"))
}

/// Runs both scenarios (`--rounds` rounds of the throughput one; median printed).
pub async fn run(plan: &crate::measure::Plan) -> Result<()> {
    let namespace = servers::unique_namespace("bench");
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("UDL__PRIVACY__"))
        .collect();
    vars.extend([
        ("UDL__POSTGRES__URL".to_owned(), servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA".to_owned(), namespace.clone()),
        ("UDL__POSTGRES__POOL__MAX".to_owned(), "20".to_owned()),
        ("UDL__SCYLLA__NODES".to_owned(), servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE".to_owned(), namespace.clone()),
        ("UDL__SCYLLA__CONSISTENCY".to_owned(), "one".to_owned()),
    ]);
    if !vars.iter().any(|(k, _)| k.starts_with("UDL__PRIVACY__")) {
        return Err(Error::new(
            ErrorKind::Config,
            "set UDL__PRIVACY__KEY_RING_FILE (eval \"$(scripts/services env)\")",
        ));
    }
    let config = udl::config::from_sources(None, vars.clone()).map_err(|e| failed("config", e))?;
    let mut stores_only = config.clone();
    stores_only.privacy = None;
    let migrating = DataLayer::connect(&stores_only).await?;
    migrating.migrate().await?;
    let mut migrations = udl::postgres::models::migrations();
    migrations.push(Migration::new(
        migrations.len() as i64 + 1,
        "bench_visits",
        DDL,
    ));
    Migrator::new(migrations)?.up(migrating.postgres()?).await?;
    migrating.shutdown(Duration::from_secs(1)).await;
    let data = DataLayer::connect(&config).await?;
    data.register::<BenchVisit>()?;
    let outcome = measure(&data, &config, plan).await;
    let outcome = match outcome {
        Ok(()) if plan.wants("commit_to_python_consumer_1000_per_s") => {
            let window = plan.window.max(Duration::from_secs(10));
            consumer_latency(&data, &vars, &namespace, window).await
        }
        other => other,
    };
    let pg = data.postgres()?;
    let drop = format!("DROP SCHEMA IF EXISTS \"{namespace}\" CASCADE");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(pg.pool())
        .await;
    let cql = format!("DROP KEYSPACE IF EXISTS \"{namespace}\"");
    let _ = data
        .scylla()?
        .session()
        .get_session()
        .query_unpaged(cql, ())
        .await;
    data.shutdown(Duration::from_secs(1)).await;
    outcome
}

async fn measure(data: &DataLayer, config: &UdlConfig, plan: &crate::measure::Plan) -> Result<()> {
    println!(
        "{:<30} {:>14} {:>14} {:>8}",
        "scenario", "udl", "raw", "ratio"
    );
    if plan.wants("relay_vs_pg_recvlogical") {
        let mut ratios = Vec::new();
        for round in 0..plan.rounds.min(3) {
            let (relay, raw) = throughput_round(data, config, round).await?;
            println!(
                "{:<30} {:>12.0}/s {:>12.0}/s {:>8.3}",
                format!("relay_vs_pg_recvlogical#{round}"),
                relay,
                raw,
                relay / raw
            );
            ratios.push(relay / raw);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "relay_vs_pg_recvlogical median ratio {:.3}",
            ratios[ratios.len() / 2]
        );
    }
    if plan.wants("snapshot_vs_copy") {
        crate::snapshot::measure(data, config, plan.rounds).await?;
    }
    // The null-sink run tells the relay's own share of the latency from ScyllaDB's.
    for (sink, rate) in [
        ("scylla", 1_000u64),
        ("scylla", 5_000),
        ("null_sink", 5_000),
    ] {
        let name = format!("commit_to_{sink}_{rate}_per_s");
        if plan.wants(&name) {
            let window = plan.window.max(Duration::from_secs(10));
            let sinks = if sink == "scylla" {
                RelaySinks::Configured
            } else {
                RelaySinks::Null
            };
            let (p50, p99, seen) = latency(data, config, rate, window, sinks).await?;
            println!(
                "{name:<30} p50 {:>8.1} ms  p99 {:>8.1} ms  ({seen} changes)",
                p50, p99
            );
        }
    }
    Ok(())
}

fn settings(data: &DataLayer, suffix: &str) -> Result<RelaySettings> {
    let mut settings = RelaySettings::for_schema(data.postgres()?.schema());
    settings.slot = format!("{}_{suffix}", settings.slot);
    settings.publication = format!("{}_pub", settings.slot);
    Ok(settings)
}

async fn exec(pg: &PgStore, sql: String) -> Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pg.pool())
        .await
        .map_err(|e| failed("sql", e))?;
    Ok(())
}

/// One round: twin slots, 200k changes, then each side drains them.
async fn throughput_round(
    data: &DataLayer,
    config: &UdlConfig,
    round: usize,
) -> Result<(f64, f64)> {
    let pg = data.postgres()?;
    let settings = settings(data, &format!("t{round}"))?;
    let twin = format!("{}_raw", settings.slot);
    udl::sync::slot::ensure_publication(pg, &settings.publication, &["bench_visits"]).await?;
    udl::sync::slot::ensure_slot(pg, &settings.slot).await?;
    udl::sync::slot::ensure_slot(pg, &twin).await?;
    write_changes(pg, round as i64 * CHANGES * 2).await?;
    let end: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(pg.pool())
        .await
        .map_err(|e| failed("lsn", e))?;

    let started = Instant::now();
    let status = tokio::process::Command::new("pg_recvlogical")
        .args([
            "-d",
            &servers::postgres_url().replace("?sslmode=disable", ""),
            "--slot",
            &twin,
        ])
        .args([
            "--start",
            "--no-loop",
            "-f",
            "/dev/null",
            "-P",
            "pgoutput",
            "--endpos",
            &end,
        ])
        .args([
            "-o",
            "proto_version=1",
            "-o",
            &format!("publication_names={}", settings.publication),
        ])
        .args(["-o", "binary=true", "-s", "1", "-F", "1"])
        .status()
        .await
        .map_err(|e| failed("pg_recvlogical", e))?;
    if !status.success() {
        return Err(failed("pg_recvlogical", status));
    }
    let raw = CHANGES as f64 / started.elapsed().as_secs_f64();

    let relay = data
        .change_relay(config, settings.clone(), RelaySinks::Null)
        .await?;
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    loop {
        let done: bool = sqlx::query_scalar(
            "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&settings.slot)
        .bind(&end)
        .fetch_one(pg.pool())
        .await
        .map_err(|e| failed("slot", e))?;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let relay_rate = CHANGES as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    running.await.map_err(|e| failed("relay task", e))??;
    udl::sync::slot::drop_capture(pg, &settings.slot, &settings.publication).await?;
    exec(pg, format!("SELECT pg_drop_replication_slot('{twin}')")).await?;
    Ok((relay_rate, raw))
}

/// 200k changes in transactions of 100: 60 inserts, 30 updates, 10 deletes; a thousand
/// patients, so tokens repeat.
async fn write_changes(pg: &PgStore, base: i64) -> Result<()> {
    let transactions = CHANGES / PER_TRANSACTION;
    let pg = Arc::new(pg.clone());
    let tasks: Vec<_> = (0..4)
        .map(|lane| {
            let pg = Arc::clone(&pg);
            tokio::spawn(async move {
                for t in (lane..transactions).step_by(4) {
                    let first = base + t * 60;
                    let sql = format!(
                        "BEGIN;
                         INSERT INTO bench_visits SELECT md5(g::text)::uuid, 'fake-patient-' || (g % 1000),
                             'fake note ' || g, 'topic-' || (g % 7), g FROM generate_series({first}, {first} + 59) g;
                         UPDATE bench_visits SET minutes = minutes + 1 WHERE id IN
                             (SELECT md5(g::text)::uuid FROM generate_series({first}, {first} + 29) g);
                         DELETE FROM bench_visits WHERE id IN
                             (SELECT md5(g::text)::uuid FROM generate_series({first} + 50, {first} + 59) g);
                         COMMIT;"
                    );
                    exec(&pg, sql).await?;
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| failed("writer", e))??;
    }
    Ok(())
}

/// Inserts at `rate` per second for `window`; each insert's latency to its durable event.
async fn latency(
    data: &DataLayer,
    config: &UdlConfig,
    rate: u64,
    window: Duration,
    sinks: RelaySinks,
) -> Result<(f64, f64, usize)> {
    let pg = data.postgres()?.clone();
    let null = u8::from(sinks == RelaySinks::Null);
    let settings = settings(data, &format!("l{rate}{null}"))?;
    let relay: Relay = data.change_relay(config, settings.clone(), sinks).await?;
    let mut events = relay.subscribe();
    let mut state = relay.state();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    let _ = state.wait_for(|s| *s == RelayState::Running).await;

    let sent: Arc<std::sync::Mutex<HashSet<String>>> = Default::default();
    let writer = {
        let (pg, sent) = (pg.clone(), Arc::clone(&sent));
        tokio::spawn(async move {
            let per_tick = (rate / 1000).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let until = Instant::now() + window;
            let mut n = 0u64;
            while Instant::now() < until {
                tick.tick().await;
                for _ in 0..per_tick {
                    let id = Uuid::new_v4();
                    sent.lock().unwrap().insert(id.to_string());
                    let pg = pg.clone();
                    n += 1;
                    tokio::spawn(async move {
                        let _ = sqlx::query("INSERT INTO bench_visits VALUES ($1, 'fake-patient-1', 'fake note', 'topic', $2)")
                            .bind(id)
                            .bind(n as i64)
                            .execute(pg.pool())
                            .await;
                    });
                }
            }
            n
        })
    };
    let mut latencies = Vec::new();
    let deadline = Instant::now() + window + Duration::from_secs(30);
    let written = loop {
        let Ok(Ok(event)) = tokio::time::timeout_at(deadline.into(), events.recv()).await else {
            break None;
        };
        // From the commit (PostgreSQL's commit time, same clock) to the event being durable
        // in ScyllaDB: a backlog of inserts waiting for a connection is not the relay's lag.
        let ours = event
            .subject
            .as_ref()
            .is_some_and(|s| sent.lock().unwrap().remove(s));
        if ours {
            let lag = chrono::Utc::now() - event.time;
            latencies.push(lag.num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0);
        }
        if writer.is_finished() && sent.lock().unwrap().is_empty() {
            break Some(());
        }
    };
    let _ = written;
    let _ = stop.send(true);
    running.await.map_err(|e| failed("relay task", e))??;
    udl::sync::slot::drop_capture(&pg, &settings.slot, &settings.publication).await?;
    if latencies.is_empty() {
        return Err(failed("latency", "no event arrived"));
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok((at(0.5), at(0.99), latencies.len()))
}

/// Single-row commits at 1k/s for `window` with ScyllaDB and the NATS bus; p50/p99 from each
/// commit to the Python consumer receiving its event.
async fn consumer_latency(
    data: &DataLayer,
    vars: &[(String, String)],
    namespace: &str,
    window: Duration,
) -> Result<()> {
    use tokio::io::AsyncBufReadExt as _;
    const RATE: u64 = 1_000;
    let count = RATE * window.as_secs();
    let stream: String = format!("BENCH_{namespace}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let mut vars = vars.to_vec();
    vars.extend([
        ("UDL__NATS__URL".to_owned(), servers::nats_url()),
        ("UDL__NATS__STREAM".to_owned(), stream.clone()),
        (
            "UDL__NATS__SUBJECT_PREFIX".to_owned(),
            format!("{}.ce", stream.to_lowercase()),
        ),
    ]);
    let config = udl::config::from_sources(None, vars).map_err(|e| failed("config", e))?;
    let pg = data.postgres()?.clone();
    let settings = settings(data, "lpy")?;
    let relay: Relay = data
        .change_relay(&config, settings.clone(), RelaySinks::Configured)
        .await?;
    let mut durable = relay.subscribe();
    let mut state = relay.state();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { relay.run(stopped).await });
    let _ = state.wait_for(|s| *s == RelayState::Running).await;

    let mut consumer = tokio::process::Command::from(udl_testkit::consumers::command(
        udl_testkit::consumers::Consumer::Python,
        &stream,
    ));
    let mut child = consumer
        .args(["--follow", &count.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed("python consumer (scripts/services up installs it)", e))?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();

    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for n in 0..count {
            tick.tick().await;
            let pg = pg.clone();
            tokio::spawn(async move {
                let _ = sqlx::query("INSERT INTO bench_visits VALUES ($1, 'fake-patient-1', 'fake note', 'topic', $2)")
                    .bind(Uuid::new_v4())
                    .bind(n as i64)
                    .execute(pg.pool())
                    .await;
            });
        }
    });
    let mut committed: std::collections::HashMap<String, i64> = Default::default();
    let mut received: Vec<(String, i64)> = Vec::new();
    let deadline = tokio::time::Instant::now() + window + Duration::from_secs(60);
    while (received.len() as u64) < count {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.map_err(|e| failed("consumer output", e))? else { break };
                let mut parts = line.split(' ');
                let id = parts.next().unwrap_or_default().to_owned();
                let at: i64 = parts.nth(2).and_then(|t| t.parse().ok()).unwrap_or_default();
                received.push((id, at));
            }
            event = durable.recv() => {
                if let Ok(event) = event {
                    committed.insert(event.id.clone(), event.time.timestamp_micros());
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    while let Ok(event) = durable.try_recv() {
        committed.insert(event.id.clone(), event.time.timestamp_micros());
    }
    writer.await.map_err(|e| failed("writer", e))?;
    let _ = stop.send(true);
    running.await.map_err(|e| failed("relay task", e))??;
    let _ = child.kill().await;
    udl::sync::slot::drop_capture(data.postgres()?, &settings.slot, &settings.publication).await?;
    if let Ok(client) = async_nats::connect(servers::nats_url()).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(&stream)
            .await;
    }
    let mut latencies: Vec<f64> = received
        .iter()
        .filter_map(|(id, at)| committed.get(id).map(|c| (at - c).max(0) as f64 / 1000.0))
        .collect();
    if latencies.is_empty() {
        return Err(failed("latency", "no event reached the consumer"));
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{:<30} p50 {:>8.1} ms  p99 {:>8.1} ms  ({} events)",
        "commit_to_python_consumer_1000_per_s",
        at(0.5),
        at(0.99),
        latencies.len()
    );
    Ok(())
}
