//! The event bus. `jetstream_publish_vs_raw`: the same 50k change events published to NATS
//! JetStream by udl's bus sink (CloudEvent JSON built per event, `Nats-Msg-Id`, every publish
//! acknowledged, batches of 2000) and by a raw `async-nats` loop publishing the same messages
//! (payloads prepared beforehand, the same id and content-type headers) and awaiting the same
//! acknowledgements; each into a fresh stream. The ratio is udl's rate over the raw loop's.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage, stream};
use udl::sync::{ChangeEvent, ChangeKind, NatsSettings, NatsSink};
use udl::{Error, ErrorKind, Result};
use udl_testkit::servers;

const EVENTS: usize = 50_000;
const BATCH: usize = 2_000;

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}"))
}

fn events() -> Vec<ChangeEvent> {
    (0..EVENTS)
        .map(|n| {
            let mut data = serde_json::Map::new();
            data.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
            data.insert("patient_ref".into(), format!("tok_{n:040x}").into());
            data.insert("topic".into(), format!("topic-{}", n % 7).into());
            data.insert("minutes".into(), (n as i64).into());
            ChangeEvent {
                id: udl::sync::event::event_id(0x1000 + n as u64, 0),
                entity: "bench_visits",
                kind: ChangeKind::Created,
                source: "udl/postgres/bench/public".into(),
                subject: data["id"].as_str().map(str::to_owned),
                time: chrono::Utc::now(),
                position: 0x1000 + n as u64,
                ordinal: 0,
                data,
            }
        })
        .collect()
}

fn settings(stream: &str) -> NatsSettings {
    NatsSettings {
        url: servers::nats_url(),
        stream: stream.to_owned(),
        subject_prefix: format!("{}.ce", stream.to_lowercase()),
        duplicate_window: Duration::from_secs(120),
        max_age: Duration::from_secs(3600),
    }
}

async fn drop_stream(js: &jetstream::Context, name: &str) {
    let _ = js.delete_stream(name).await;
}

/// udl's sink over `events`; events per second.
async fn through_udl(events: &[ChangeEvent], stream: &str) -> Result<f64> {
    let sink = NatsSink::connect(&settings(stream)).await?;
    let refs: Vec<&ChangeEvent> = events.iter().collect();
    let started = Instant::now();
    for batch in refs.chunks(BATCH) {
        sink.publish(batch).await?;
    }
    Ok(events.len() as f64 / started.elapsed().as_secs_f64())
}

/// The raw client over the same payloads; events per second.
async fn raw(js: &jetstream::Context, events: &[ChangeEvent], stream: &str) -> Result<f64> {
    let prefix = settings(stream).subject_prefix;
    js.create_stream(stream::Config {
        name: stream.to_owned(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(120),
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .map_err(|e| failed("stream", e))?;
    let prepared: Vec<(String, String, bytes::Bytes)> = events
        .iter()
        .map(|e| {
            let subject = format!("{prefix}.{}.created", e.entity);
            (subject, e.id.clone(), e.to_cloudevent_text().into())
        })
        .collect();
    let started = Instant::now();
    for batch in prepared.chunks(BATCH) {
        let mut acks = Vec::with_capacity(batch.len());
        for (subject, id, payload) in batch {
            let message = PublishMessage::build()
                .message_id(id)
                .header("Content-Type", "application/cloudevents+json")
                .payload(payload.clone());
            let ack = js
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| failed("publish", e))?;
            acks.push(std::future::IntoFuture::into_future(ack));
        }
        futures_util::future::try_join_all(acks)
            .await
            .map_err(|e| failed("ack", e))?;
    }
    Ok(events.len() as f64 / started.elapsed().as_secs_f64())
}

/// Runs the scenario (`--rounds` rounds, at most 3; median printed).
pub async fn run(plan: &crate::measure::Plan) -> Result<()> {
    let client = async_nats::connect(servers::nats_url())
        .await
        .map_err(|e| failed("connect", e))?;
    let js = jetstream::new(client);
    println!(
        "{:<30} {:>14} {:>14} {:>8}",
        "scenario", "udl", "raw", "ratio"
    );
    if !plan.wants("jetstream_publish_vs_raw") {
        return Ok(());
    }
    let events = events();
    let mut ratios = Vec::new();
    for round in 0..plan.rounds.clamp(1, 3) {
        let (ours, theirs) = (format!("BENCH_UDL_{round}"), format!("BENCH_RAW_{round}"));
        drop_stream(&js, &ours).await;
        drop_stream(&js, &theirs).await;
        // Each side goes first in turn: the server warms up under whichever runs first.
        let (udl_rate, raw_rate) = if round % 2 == 0 {
            let udl_rate = through_udl(&events, &ours).await;
            (udl_rate, raw(&js, &events, &theirs).await)
        } else {
            let raw_rate = raw(&js, &events, &theirs).await;
            (through_udl(&events, &ours).await, raw_rate)
        };
        drop_stream(&js, &ours).await;
        drop_stream(&js, &theirs).await;
        let (udl_rate, raw_rate) = (udl_rate?, raw_rate?);
        println!(
            "{:<30} {:>12.0}/s {:>12.0}/s {:>8.3}",
            format!("jetstream_publish_vs_raw#{round}"),
            udl_rate,
            raw_rate,
            udl_rate / raw_rate
        );
        ratios.push(udl_rate / raw_rate);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "jetstream_publish_vs_raw median ratio {:.3}",
        ratios[ratios.len() / 2]
    );
    Ok(())
}
