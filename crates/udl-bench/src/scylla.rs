//! ScyllaDB (Cassandra locally): ingest of 200k metric points and of 200k usage events, and a
//! range read of one day of a series, each against the raw `scylla` driver using the same
//! prepared statements.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::{stream, StreamExt as _};
use udl::scylla::{models, Event, EventLog, EventTable, Point, ScyllaStore, TimeSeries};
use udl::Result;
use udl_testkit::servers;

use crate::measure::{compare, header, report, scenario, Plan};

const EVENTS: usize = 200_000;
const SERIES: usize = 20;
/// Requests in flight on both sides.
const IN_FLIGHT: usize = 64;
/// Points in the day read back: one every 10 s.
const DAY_POINTS: usize = 8_640;

fn day() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
}

/// Runs the ScyllaDB scenarios and prints their lines.
pub async fn run(plan: &Plan) -> Result<()> {
    let keyspace = servers::unique_namespace("bench");
    let vars = [
        ("UDL__SCYLLA__NODES", servers::scylla_node()),
        ("UDL__SCYLLA__KEYSPACE", keyspace.clone()),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let store = ScyllaStore::connect(
        config
            .store::<udl::scylla::ScyllaConfig>()
            .expect("scylla configured"),
    )
    .await?;
    models::migrator().up(&store).await?;
    let ts = TimeSeries::new(&store, IN_FLIGHT).await?;
    header();
    let outcome = async {
        if plan.wants("ingest_200k") {
            ingest(&store, &ts, plan.rounds, Path::Batched).await?;
        }
        if plan.wants("ingest_200k_rows") {
            ingest(&store, &ts, plan.rounds, Path::RowByRow).await?;
        }
        if plan.wants("ingest_200k_events") {
            ingest_events(&store, plan.rounds).await?;
        }
        range_read(&store, &ts, plan).await
    }
    .await;
    let drop = format!("DROP KEYSPACE IF EXISTS \"{keyspace}\"");
    let _ = store.session().get_session().query_unpaged(drop, ()).await;
    outcome
}

/// `EVENTS` points over `SERIES` series of one day, tagged so each run writes new rows.
fn events(round: usize) -> Vec<(String, Point)> {
    (0..EVENTS)
        .map(|i| {
            let series = format!("bench.r{round}.s{}", i % SERIES);
            let at = day() + chrono::Duration::milliseconds((i / SERIES) as i64 * 100);
            (
                series,
                Point {
                    at,
                    value: i as f64,
                },
            )
        })
        .collect()
}

/// How udl is given the events.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// `write_many` per series: single-partition unlogged batches, `IN_FLIGHT` at once.
    Batched,
    /// `write` per event, `IN_FLIGHT` at once: the same requests as the raw side.
    RowByRow,
}

/// Events per second of udl and of raw prepared single-row inserts (`IN_FLIGHT` at once),
/// compared as every scenario is (warm-up, alternating rounds); each run writes new series.
async fn ingest(store: &ScyllaStore, ts: &TimeSeries, rounds: usize, path: Path) -> Result<()> {
    let run = std::cell::Cell::new(0);
    let next_events = || {
        run.set(run.get() + 1);
        events(run.get())
    };
    let (udl_rate, raw_rate) = compare(
        rounds,
        || udl_ingest(ts, next_events(), path),
        || raw_ingest(store, ts, next_events()),
    )
    .await;
    let name = match path {
        Path::Batched => "ingest_200k",
        Path::RowByRow => "ingest_200k_rows",
    };
    report(name, udl_rate, raw_rate);
    Ok(())
}

async fn udl_ingest(ts: &TimeSeries, events: Vec<(String, Point)>, path: Path) -> f64 {
    if path == Path::Batched {
        // Callers hand write_many a series' points; grouping them is not part of the ingest.
        let by_series = group(events);
        let started = Instant::now();
        for (series, points) in &by_series {
            ts.write_many(series, points).await.expect("udl write_many");
        }
        EVENTS as f64 / started.elapsed().as_secs_f64()
    } else {
        let started = Instant::now();
        let mut writes = stream::iter(&events)
            .map(|(series, point)| ts.write(series, *point))
            .buffer_unordered(IN_FLIGHT);
        while let Some(done) = writes.next().await {
            done.expect("udl write");
        }
        EVENTS as f64 / started.elapsed().as_secs_f64()
    }
}

async fn raw_ingest(store: &ScyllaStore, ts: &TimeSeries, events: Vec<(String, Point)>) -> f64 {
    let session = store.session().get_session();
    let insert = ts.insert_statement();
    let ttl = store.analytics_ttl().as_secs() as i32;
    let started = Instant::now();
    let mut writes = stream::iter(&events)
        .map(|(series, p)| {
            let bucket = ts.bucket_of(p.at);
            async move {
                session
                    .execute_unpaged(insert, (series, bucket, p.at, p.value, ttl))
                    .await
            }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some(done) = writes.next().await {
        done.expect("raw insert");
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

/// `EVENTS` sanitized usage events over `SERIES` streams, new ids each call.
fn usage_events() -> Vec<(String, Event)> {
    (0..EVENTS)
        .map(|i| {
            let at = day() + chrono::Duration::milliseconds(i as i64 * 10);
            let attributes = BTreeMap::from([
                ("ce.type".to_owned(), "ce.message.sent".to_owned()),
                ("latency_ms".to_owned(), (i % 900).to_string()),
            ]);
            (format!("ce.s{}", i % SERIES), Event::new(at, attributes))
        })
        .collect()
}

/// Events per second of `EventLog::append_many` and of the raw driver running the same
/// prepared insert, `IN_FLIGHT` at once on both sides.
async fn ingest_events(store: &ScyllaStore, rounds: usize) -> Result<()> {
    let log = EventLog::new(store, EventTable::Usage, IN_FLIGHT).await?;
    let (udl_rate, raw_rate) = compare(
        rounds,
        || async {
            let by_stream = group(usage_events());
            let started = Instant::now();
            for (stream, events) in &by_stream {
                log.append_many(stream, events).await.expect("udl append");
            }
            EVENTS as f64 / started.elapsed().as_secs_f64()
        },
        || async {
            let events = usage_events();
            let session = store.session().get_session();
            let ttl = store.analytics_ttl().as_secs() as i32;
            let started = Instant::now();
            let mut writes = stream::iter(&events)
                .map(|(stream, e)| {
                    let values = (
                        stream,
                        store.bucket_of(e.at),
                        e.at,
                        e.id,
                        &e.attributes,
                        ttl,
                    );
                    session.execute_unpaged(log.insert_statement(), values)
                })
                .buffer_unordered(IN_FLIGHT);
            while let Some(done) = writes.next().await {
                done.expect("raw insert");
            }
            EVENTS as f64 / started.elapsed().as_secs_f64()
        },
    )
    .await;
    report("ingest_200k_events", udl_rate, raw_rate);
    Ok(())
}

/// Items grouped by their key, keys in order.
fn group<T>(items: Vec<(String, T)>) -> BTreeMap<String, Vec<T>> {
    let mut out: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for (key, item) in items {
        out.entry(key).or_default().push(item);
    }
    out
}

/// Reads of one whole day of one series (`DAY_POINTS` points, one partition).
async fn range_read(store: &ScyllaStore, ts: &TimeSeries, plan: &Plan) -> Result<()> {
    let points: Vec<Point> = (0..DAY_POINTS)
        .map(|i| Point {
            at: day() + chrono::Duration::seconds(i as i64 * 10),
            value: i as f64,
        })
        .collect();
    ts.write_many("bench.day", &points).await?;
    let (from, to) = (day(), day() + chrono::Duration::days(1));
    let udl_ts = Arc::new(ts.clone());
    let select = format!(
        "SELECT at, value FROM \"{}\".metric_points WHERE series = ? AND bucket = ? AND at > ? AND at < ?",
        store.keyspace()
    );
    let raw_store = store.clone();
    let mut prepared = store
        .session()
        .get_session()
        .prepare(select)
        .await
        .map_err(|e| udl::scylla::classify(&e.into(), "prepare"))?;
    prepared.set_page_size(5_000);
    let bucket = ts.bucket_of(from);
    scenario(
        plan,
        "range_read_1_day",
        move |_| {
            let ts = Arc::clone(&udl_ts);
            async move {
                let read = ts.range("bench.day", from, to).await.expect("udl range");
                assert_eq!(read.len(), DAY_POINTS);
            }
        },
        move |_| {
            let (store, prepared) = (raw_store.clone(), prepared.clone());
            async move {
                let lower = from - chrono::Duration::milliseconds(1);
                let pager = store
                    .session()
                    .get_session()
                    .execute_iter(prepared, ("bench.day", bucket, lower, to))
                    .await
                    .expect("raw select");
                let rows: Vec<(DateTime<Utc>, f64)> = pager
                    .rows_stream::<(DateTime<Utc>, f64)>()
                    .expect("row type")
                    .map(|r| r.expect("row"))
                    .collect()
                    .await;
                assert_eq!(rows.len(), DAY_POINTS);
            }
        },
    )
    .await;
    Ok(())
}
