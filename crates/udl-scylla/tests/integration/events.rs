//! Event streams (usage analytics and logs) on the real server.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use udl_core::ErrorKind;
use udl_scylla::{models, Event, EventLog, EventTable};

fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn events_append_and_read_back_in_order_across_buckets() {
    let store = common::store_with(&[("UDL__SCYLLA__TIME_BUCKET", "1h")]).await;
    models::migrator().up(&store).await.unwrap();
    let log = EventLog::new(&store, EventTable::Usage, 32).await.unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 8, 30, 0).unwrap();
    // 300 events a minute apart (five buckets), two of them in the same millisecond.
    let mut events: Vec<Event> = (0..300)
        .map(|i| {
            let at = t0 + chrono::Duration::minutes(i);
            Event::new(
                at,
                attributes(&[("ce.type", "ce.session.started"), ("n", &i.to_string())]),
            )
        })
        .collect();
    events.push(Event::new(
        t0,
        attributes(&[("ce.type", "ce.tie"), ("n", "tie")]),
    ));
    assert_eq!(log.append_many("ce.sessions", &events).await.unwrap(), 301);

    let read = log
        .range("ce.sessions", t0, t0 + chrono::Duration::hours(6))
        .await
        .unwrap();
    assert_eq!(read.len(), 301);
    assert!(read
        .windows(2)
        .all(|w| (w[0].at, w[0].id) < (w[1].at, w[1].id)));
    let numbers: Vec<&str> = read.iter().map(|e| e.attributes["n"].as_str()).collect();
    assert!(numbers[..2].contains(&"tie") && numbers[..2].contains(&"0"));
    assert_eq!(numbers.last(), Some(&"299"));
    assert_eq!(
        read.iter().find(|e| e.attributes["n"] == "7"),
        events.get(7)
    );

    // Logs are another table: same stream name, nothing shared.
    let logs = EventLog::new(&store, EventTable::Logs, 32).await.unwrap();
    assert!(logs
        .range("ce.sessions", t0, t0 + chrono::Duration::hours(6))
        .await
        .unwrap()
        .is_empty());
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn event_rows_expire_with_the_analytics_ttl() {
    let store = common::store()
        .await
        .keeping(std::time::Duration::from_secs(7 * 86_400), None);
    models::migrator().up(&store).await.unwrap();
    let logs = EventLog::new(&store, EventTable::Logs, 8).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap();
    let event = Event::new(
        at,
        attributes(&[("level", "info"), ("message", "fake start")]),
    );
    logs.append_many("api", std::slice::from_ref(&event))
        .await
        .unwrap();
    let cql = format!(
        "SELECT TTL(attributes) FROM \"{}\".log_events WHERE stream = 'api' AND bucket = ? AND at = ? AND id = ?",
        store.keyspace()
    );
    let bucket = at.timestamp_millis().div_euclid(86_400_000);
    let rows = store
        .session()
        .execute_unpaged(cql.as_str(), (bucket, at, event.id))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    // A map's TTL is one per entry.
    let (ttls,) = rows.single_row::<(Option<Vec<i32>>,)>().unwrap();
    let week = Duration::from_secs(7 * 86_400).as_secs() as i32;
    let ttls = ttls.unwrap_or_default();
    assert_eq!(ttls.len(), 2);
    assert!(ttls.iter().all(|&t| t <= week && t >= week - 2), "{ttls:?}");
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn oversized_or_malformed_events_are_refused_before_writing() {
    let store = common::store().await;
    models::migrator().up(&store).await.unwrap();
    let log = EventLog::new(&store, EventTable::Usage, 8).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap();
    let good = Event::new(at, attributes(&[("k", "v")]));
    let huge = Event::new(at, attributes(&[("k", &"x".repeat(70_000))]));
    let too_many = Event::new(
        at,
        (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
    );
    let nameless = Event::new(at, attributes(&[("", "v")]));
    let ancient = Event::new(
        Utc.with_ymd_and_hms(1800, 1, 1, 0, 0, 0).unwrap(),
        BTreeMap::new(),
    );
    for bad in [huge, too_many, nameless, ancient] {
        let err = log
            .append_many("ce.bad", &[good.clone(), bad])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let read = log
        .range("ce.bad", at, at + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(read.is_empty(), "a refused batch writes nothing");
    common::drop_keyspace(&store).await;
}
