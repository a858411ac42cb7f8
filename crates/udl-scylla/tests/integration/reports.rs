//! Precomputed report rows on the real server.

use crate::common;

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use udl_core::ErrorKind;
use udl_scylla::{models, Period, Reports};

#[tokio::test]
async fn report_rows_are_replaced_and_read_newest_first() {
    let store = common::store().await;
    models::migrator().up(&store).await.unwrap();
    let reports = Reports::new(&store).await.unwrap();
    let day = |d| Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0).unwrap();
    for d in 1..=10 {
        let figures = BTreeMap::from([
            ("active_users".to_owned(), f64::from(d * 10)),
            ("sessions".to_owned(), f64::from(d * 25)),
        ]);
        reports
            .put("engagement", Period::Day, day(d), &figures)
            .await
            .unwrap();
    }
    // Recomputing a day replaces it.
    let fixed = BTreeMap::from([("active_users".to_owned(), 999.0)]);
    reports
        .put("engagement", Period::Day, day(5), &fixed)
        .await
        .unwrap();

    let rows = reports
        .range("engagement", Period::Day, day(3), day(8))
        .await
        .unwrap();
    let starts: Vec<u32> = rows
        .iter()
        .map(|r| chrono::Datelike::day(&r.period_start))
        .collect();
    assert_eq!(starts, [7, 6, 5, 4, 3], "newest first, end exclusive");
    assert_eq!(rows[2].figures, fixed);
    assert!(reports
        .range("engagement", Period::Week, day(1), day(11))
        .await
        .unwrap()
        .is_empty());

    let bad = BTreeMap::from([("ratio".to_owned(), f64::INFINITY)]);
    let err = reports
        .put("engagement", Period::Day, day(11), &bad)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    common::drop_keyspace(&store).await;
}
