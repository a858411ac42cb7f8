//! Time-series metrics on the real server: bucketed writes, ordered reads across buckets,
//! TTL, paging, hostile input.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use udl_core::ErrorKind;
use udl_scylla::{models, Point, Resolution, ScyllaStore, TimeSeries};

async fn series_store(extra: &[(&str, &str)]) -> (ScyllaStore, TimeSeries) {
    series_on(common::store_with(extra).await).await
}

async fn series_on(store: ScyllaStore) -> (ScyllaStore, TimeSeries) {
    models::migrator().up(&store).await.unwrap();
    let series = TimeSeries::new(&store, 16).await.unwrap();
    (store, series)
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 22, 0, 0).unwrap()
}

/// `n` points one minute apart from `start()`, values 0, 1, 2, ...
fn minutes(n: usize) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            at: start() + chrono::Duration::minutes(i as i64),
            value: i as f64,
        })
        .collect()
}

#[tokio::test]
async fn reads_span_buckets_in_time_order() {
    // One-hour buckets: 200 minutes cross four partitions.
    let (store, ts) = series_store(&[("UDL__SCYLLA__TIME_BUCKET", "1h")]).await;
    let mut points = minutes(200);
    points.reverse(); // written newest first; read back oldest first
    assert_eq!(
        ts.write_many("fake.heart_rate", &points).await.unwrap(),
        200
    );
    let buckets: std::collections::BTreeSet<i64> =
        points.iter().map(|p| ts.bucket_of(p.at)).collect();
    assert_eq!(buckets.len(), 4);

    let from = start() + chrono::Duration::minutes(30);
    let to = start() + chrono::Duration::minutes(170);
    let read = ts.range("fake.heart_rate", from, to).await.unwrap();
    let values: Vec<f64> = read.iter().map(|p| p.value).collect();
    assert_eq!(values, (30..170).map(f64::from).collect::<Vec<_>>());
    assert!(ts.range("fake.other", from, to).await.unwrap().is_empty());
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn pages_cover_the_range_once_in_order() {
    let (store, ts) = series_store(&[("UDL__SCYLLA__TIME_BUCKET", "2h")]).await;
    ts.write_many("fake.steps", &minutes(1_050)).await.unwrap();
    let end = start() + chrono::Duration::days(2);
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = ts
            .page("fake.steps", start(), end, 100, after)
            .await
            .unwrap();
        pages += 1;
        assert!(page.points.len() <= 100);
        seen.extend(page.points.iter().map(|p| p.value as usize));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..1_050).collect::<Vec<_>>(),
        "every point once, in order"
    );
    assert!(pages >= 11, "{pages} pages");
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn analytics_rows_carry_the_configured_ttl() {
    let thirty_days = Duration::from_secs(30 * 86_400);
    let (store, ts) = series_on(common::store().await.keeping(thirty_days, None)).await;
    let point = minutes(1)[0];
    ts.write("fake.sessions", point).await.unwrap();
    let ttl = ts.ttl_of("fake.sessions", point.at).await.unwrap().unwrap();
    assert!(
        // The class's retention, to within the seconds the write and this read took.
        ttl <= thirty_days && ttl >= thirty_days - Duration::from_secs(2),
        "{ttl:?}"
    );
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn hostile_input_is_refused_before_anything_is_written() {
    let (store, ts) = series_store(&[]).await;
    let mut points = minutes(10);
    points[7].value = f64::NAN;
    let err = ts.write_many("fake.bp", &points).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let end = start() + chrono::Duration::hours(1);
    assert!(
        ts.range("fake.bp", start(), end).await.unwrap().is_empty(),
        "one bad point: nothing written"
    );

    let far_future = Point {
        at: Utc.with_ymd_and_hms(3000, 1, 1, 0, 0, 0).unwrap(),
        value: 1.0,
    };
    let before_epoch = Point {
        at: Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap(),
        value: 1.0,
    };
    for bad in [far_future, before_epoch] {
        let err = ts.write("fake.bp", bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let long_name = "x".repeat(300);
    let err = ts.write(&long_name, minutes(1)[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        !err.to_string().contains(&long_name),
        "input not echoed: {err}"
    );
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn minute_and_hour_rollups_are_stored_and_read_across_buckets() {
    // One-hour buckets, three hours of points every 10 s starting at 22:00 (value = minute).
    let (store, ts) = series_store(&[("UDL__SCYLLA__TIME_BUCKET", "1h")]).await;
    let points: Vec<Point> = (0..1_080)
        .map(|i| Point {
            at: start() + chrono::Duration::seconds(i * 10),
            value: (i / 6) as f64,
        })
        .collect();
    ts.write_many("fake.messages", &points).await.unwrap();
    let end = start() + chrono::Duration::hours(3);

    assert_eq!(
        ts.roll_up("fake.messages", Resolution::Minute, start(), end)
            .await
            .unwrap(),
        180
    );
    // Recomputing replaces rows instead of adding to them.
    ts.roll_up("fake.messages", Resolution::Minute, start(), end)
        .await
        .unwrap();
    let minutes = ts
        .rollups("fake.messages", Resolution::Minute, start(), end)
        .await
        .unwrap();
    assert_eq!(minutes.len(), 180, "three buckets, in order");
    assert!(minutes.windows(2).all(|w| w[0].at < w[1].at));
    assert!(minutes.iter().enumerate().all(|(i, r)| r.count == 6
        && r.min == i as f64
        && r.max == i as f64
        && r.sum == 6.0 * i as f64));

    // An unaligned range rolls up the whole hours it touches.
    let written = ts
        .roll_up(
            "fake.messages",
            Resolution::Hour,
            start() + chrono::Duration::minutes(5),
            end - chrono::Duration::minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(written, 3);
    let hours = ts
        .rollups("fake.messages", Resolution::Hour, start(), end)
        .await
        .unwrap();
    let summary: Vec<(i64, f64, f64)> = hours.iter().map(|h| (h.count, h.min, h.max)).collect();
    assert_eq!(
        summary,
        [(360, 0.0, 59.0), (360, 60.0, 119.0), (360, 120.0, 179.0)]
    );
    assert_eq!(hours[1].mean(), 89.5);
    common::drop_keyspace(&store).await;
}
