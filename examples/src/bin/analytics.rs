//! ScyllaDB analytics: metric points in bounded partitions with a 13-month lifetime, rolled up
//! per minute, and sanitized usage events, read back by time range. Needs `[scylla]`.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use udl::scylla::{Event, EventLog, EventTable, Point, Resolution, TimeSeries};
use udl::Result;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let scylla = data.scylla()?;
    let (from, to) = (
        Utc::now() - Duration::minutes(5),
        Utc::now() + Duration::minutes(1),
    );

    let metrics = TimeSeries::new(scylla, 64).await?; // at most 64 requests in flight
    let points: Vec<Point> = (0..5)
        .map(|n| Point {
            at: from + Duration::seconds(n * 30),
            value: 40.0 + n as f64,
        })
        .collect();
    metrics.write_many("api.latency_ms", &points).await?;
    assert_eq!(metrics.range("api.latency_ms", from, to).await?.len(), 5);
    metrics
        .roll_up("api.latency_ms", Resolution::Minute, from, to)
        .await?;
    let per_minute = metrics
        .rollups("api.latency_ms", Resolution::Minute, from, to)
        .await?;
    assert!(!per_minute.is_empty());

    let usage = EventLog::new(scylla, EventTable::Usage, 64).await?;
    let attributes = BTreeMap::from([("plan".to_owned(), "therapy-monthly".to_owned())]);
    usage
        .append_many("ce.session", &[Event::new(Utc::now(), attributes)])
        .await?;
    assert_eq!(usage.range("ce.session", from, to).await?.len(), 1);
    Ok(())
}
