//! Analytics writes while ScyllaDB is cut off (toxiproxy between udl and Cassandra, node
//! addresses translated to the proxy): every write is acknowledged (written or spooled), none
//! waits past the request timeout, the spool survives a restart of the writer, and when the
//! link is back every acknowledged write reaches ScyllaDB in the order it was accepted.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use udl_metrics::Metrics;
use udl_scylla::{
    models, Delivery, Event, EventLog, EventTable, Point, ScyllaStore, SpooledAnalytics, TimeSeries,
};
use udl_testkit::servers;
use udl_testkit::toxiproxy::Proxy;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

async fn store_behind(proxy: &Proxy, keyspace: &str) -> ScyllaStore {
    let direct = servers::scylla_node();
    let map = format!("{direct}={}", proxy.listen());
    let config = common::config_with(
        proxy.listen(),
        keyspace,
        &[
            ("UDL__SCYLLA__ADDRESS_MAP", map.as_str()),
            ("UDL__SCYLLA__REQUEST_TIMEOUT", "1s"),
            ("UDL__SCYLLA__POOL__ACQUIRE_TIMEOUT", "2s"),
        ],
    );
    match ScyllaStore::connect(&config).await {
        Ok(store) => store,
        Err(e) => servers::unreachable("Cassandra (through toxiproxy)", proxy.listen(), &e),
    }
}

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

fn event(minute: i64, n: usize) -> Event {
    Event::new(
        at(minute),
        BTreeMap::from([("n".to_owned(), n.to_string())]),
    )
}

#[tokio::test]
async fn writes_during_an_outage_are_spooled_and_replayed_in_order_after_it() {
    let proxy = Proxy::to(&servers::scylla_node());
    let keyspace = servers::unique_namespace("t");
    // Migrated directly: a durable schema change may take longer than the proxied store's
    // one-second request timeout while other tests make theirs.
    let direct = ScyllaStore::connect(&common::config_with(
        &servers::scylla_node(),
        &keyspace,
        &[],
    ))
    .await
    .unwrap();
    models::migrator().up(&direct).await.unwrap();
    let store = store_behind(&proxy, &keyspace).await;
    let dir = std::env::temp_dir().join(servers::unique_namespace("spool"));
    let metrics = Arc::new(Metrics::new());
    let analytics = SpooledAnalytics::new(&store, &dir, 8)
        .await
        .unwrap()
        .with_metrics(Arc::clone(&metrics));

    let healthy = [Point {
        at: at(0),
        value: 1.0,
    }];
    assert_eq!(
        analytics
            .write_points("fake.pulse", &healthy)
            .await
            .unwrap(),
        Delivery::Written
    );

    proxy.set_enabled(false);
    // A steady stream: the same point rewritten with 1, 2, ... (only replay in acceptance
    // order leaves the last value), distinct points, and events.
    let mut acknowledged = 0;
    for n in 1..=40_usize {
        let started = Instant::now();
        let overwrite = [Point {
            at: at(0),
            value: n as f64,
        }];
        let distinct = [Point {
            at: at(n as i64),
            value: n as f64,
        }];
        for delivery in [
            analytics
                .write_points("fake.pulse", &overwrite)
                .await
                .unwrap(),
            analytics
                .write_points("fake.pulse", &distinct)
                .await
                .unwrap(),
            analytics
                .append_events(EventTable::Usage, "fake.sessions", &[event(n as i64, n)])
                .await
                .unwrap(),
        ] {
            assert_eq!(delivery, Delivery::Spooled);
            acknowledged += 1;
        }
        assert!(
            started.elapsed() < REQUEST_TIMEOUT * 4,
            "no write waits past its timeout: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(analytics.depth(), acknowledged);
    let invalid = [Point {
        at: at(1),
        value: f64::NAN,
    }];
    assert!(analytics
        .write_points("fake.pulse", &invalid)
        .await
        .is_err());
    assert_eq!(
        analytics.depth(),
        acknowledged,
        "refused input is never spooled"
    );
    assert!(analytics.replay().await.is_err(), "still cut off");

    // The writer restarts once ScyllaDB is back (it prepares its statements at start):
    // what it acknowledged is on disk.
    drop(analytics);
    proxy.set_enabled(true);
    let back = Instant::now();
    let analytics = loop {
        match SpooledAnalytics::new(&store, &dir, 8).await {
            Ok(analytics) => break analytics.with_metrics(Arc::clone(&metrics)),
            Err(e) => assert!(back.elapsed() < Duration::from_secs(30), "never back: {e}"),
        }
        // The driver reconnects in the background: give it the thread between attempts.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(analytics.depth(), acknowledged);
    let replayed = loop {
        match analytics.replay().await {
            Ok(sent) => break sent,
            Err(e) => assert!(
                back.elapsed() < Duration::from_secs(30),
                "never replayed: {e}"
            ),
        }
    };
    assert_eq!(replayed, acknowledged);
    assert_eq!(analytics.depth(), 0);
    let text = metrics.render();
    assert!(
        text.contains(r#"udl_spool_depth{store="scylla"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"udl_spool_replayed_total{{store="scylla"}} {acknowledged}"#
        )),
        "{text}"
    );

    let series = TimeSeries::new(&store, 8).await.unwrap();
    let points = series.range("fake.pulse", at(0), at(60)).await.unwrap();
    assert_eq!(points.len(), 41, "every acknowledged point is there");
    assert_eq!(
        points[0].value, 40.0,
        "rewrites replayed in acceptance order"
    );
    assert!(points[1..]
        .iter()
        .enumerate()
        .all(|(i, p)| p.value == (i + 1) as f64));
    let events = EventLog::new(&store, EventTable::Usage, 8).await.unwrap();
    assert_eq!(
        events
            .range("fake.sessions", at(0), at(60))
            .await
            .unwrap()
            .len(),
        40
    );
    assert_eq!(
        analytics
            .write_points("fake.pulse", &healthy)
            .await
            .unwrap(),
        Delivery::Written,
        "with the spool empty, writes go straight to ScyllaDB again"
    );
    common::drop_keyspace(&store).await;
    std::fs::remove_dir_all(dir).unwrap();
}
