//! The generic repository over CQL on the real server: key-addressed CRUD, partition reads,
//! and the refusals that keep every query on a key.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use udl_core::{
    field, AccessContext, Changes, ErrorKind, Filter, Page, Purpose, Repository, Role, SortKey,
};
use udl_derive::Entity;
use udl_scylla::{cql, CqlMigration, ScyllaMigrator, ScyllaStore};
use uuid::Uuid;

/// A setting read and written by id.
#[derive(Entity, Clone, PartialEq)]
#[udl(crate = "udl_core", table = "flag_settings")]
struct FlagSetting {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(internal)]
    name: String,
    #[udl(internal)]
    enabled: bool,
    #[udl(internal)]
    notes: Option<String>,
    #[udl(internal)]
    updated_at: DateTime<Utc>,
    #[udl(version, internal)]
    version: i64,
}

/// A device reading, read by (device, day) and ordered by time.
#[derive(Entity, Clone, PartialEq)]
#[udl(
    crate = "udl_core",
    table = "device_readings",
    partition_key = "device_id, day",
    clustering_key = "at, id"
)]
struct DeviceReading {
    #[udl(id, internal)]
    id: Uuid,
    #[udl(internal)]
    device_id: String,
    #[udl(internal)]
    day: NaiveDate,
    #[udl(internal)]
    at: DateTime<Utc>,
    #[udl(internal)]
    reading: f64,
}

fn ctx() -> AccessContext {
    AccessContext::new("scylla-test", Role::Service, Purpose::Operations).unwrap()
}

async fn store_with_tables() -> ScyllaStore {
    let store = common::store().await;
    let tables = vec![
        cql::create_table(<FlagSetting as udl_core::Entity>::meta()).into(),
        cql::create_table(<DeviceReading as udl_core::Entity>::meta()).into(),
    ];
    ScyllaMigrator::new(vec![CqlMigration::new(1, "test_tables", tables)])
        .unwrap()
        .up(&store)
        .await
        .unwrap();
    store
}

fn flag(name: &str) -> FlagSetting {
    FlagSetting {
        id: Uuid::new_v4(),
        name: name.into(),
        enabled: false,
        notes: None,
        updated_at: Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
        version: 1,
    }
}

#[tokio::test]
async fn records_keyed_by_id_round_trip_with_conflicts_and_versions() {
    let store = store_with_tables().await;
    let flags: Repository<FlagSetting> = Repository::new(store.records()).unwrap();
    let a = flag("fake-dark-mode");
    flags.create(&ctx(), a.clone()).await.unwrap();
    assert_eq!(flags.get(&ctx(), &a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(flags.get(&ctx(), &Uuid::new_v4()).await.unwrap(), None);

    let dup = flags.create(&ctx(), a.clone()).await.unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::Conflict, "{dup}");
    assert!(!dup.is_temporary());

    assert!(flags
        .update(
            &ctx(),
            &a.id,
            Changes::new().set("enabled", true).expect_version(1)
        )
        .await
        .unwrap());
    let updated = flags.get_required(&ctx(), &a.id).await.unwrap();
    assert_eq!(
        (updated.enabled, updated.version, updated.name.as_str()),
        (true, 2, "fake-dark-mode")
    );
    let stale = flags
        .update(
            &ctx(),
            &a.id,
            Changes::new().set("enabled", false).expect_version(1),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::Conflict, "{stale}");
    assert!(flags
        .update(&ctx(), &a.id, Changes::new().set("notes", "fake note"))
        .await
        .unwrap());
    assert_eq!(flags.get_required(&ctx(), &a.id).await.unwrap().version, 3);
    assert!(!flags
        .update(&ctx(), &Uuid::new_v4(), Changes::new().set("enabled", true))
        .await
        .unwrap());

    assert!(flags.delete(&ctx(), &a.id).await.unwrap());
    assert!(!flags.delete(&ctx(), &a.id).await.unwrap());
    assert!(!flags.exists(&ctx(), &a.id).await.unwrap());

    let short = flag("fake-short-lived");
    flags
        .create_with_ttl(&ctx(), short.clone(), Duration::from_secs(3_600))
        .await
        .unwrap();
    let cql = format!(
        "SELECT TTL(name) FROM \"{}\".flag_settings WHERE id = ?",
        store.keyspace()
    );
    let rows = store
        .session()
        .execute_unpaged(cql.as_str(), (short.id,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (ttl,) = rows.single_row::<(Option<i32>,)>().unwrap();
    assert!(ttl.is_some_and(|t| t > 3_000 && t <= 3_600), "{ttl:?}");
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn an_oversized_partition_key_is_refused_saying_so_before_it_is_sent() {
    let store = store_with_tables().await;
    let readings: Repository<DeviceReading> = Repository::new(store.records()).unwrap();
    let mut huge = reading("fake-device", 1);
    huge.device_id = "f".repeat(1 << 20);
    let err = readings.create(&ctx(), huge).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains(
            "partition key of device_readings is 1048586 bytes; ScyllaDB allows at most 65535"
        ),
        "{err}"
    );
    assert!(!err.is_temporary());
    // At the bound exactly (the text, the date and their framing), the server stores it.
    let mut largest = reading("fake-device", 2);
    largest.device_id = "f".repeat(udl_scylla::MAX_PARTITION_KEY_BYTES - 3 - 4 - 3);
    readings.create(&ctx(), largest).await.unwrap();
    common::drop_keyspace(&store).await;
}

fn reading(device: &str, minute: i64) -> DeviceReading {
    let at =
        Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap() + chrono::Duration::minutes(minute);
    DeviceReading {
        id: Uuid::new_v4(),
        device_id: device.into(),
        day: at.date_naive(),
        at,
        reading: minute as f64,
    }
}

#[tokio::test]
async fn partitions_are_read_by_key_in_clustering_order() {
    let store = store_with_tables().await;
    let readings: Repository<DeviceReading> = Repository::new(store.records()).unwrap();
    for minute in 0..30 {
        readings
            .create(&ctx(), reading("fake-device-1", minute))
            .await
            .unwrap();
    }
    readings
        .create(&ctx(), reading("fake-device-2", 5))
        .await
        .unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let partition = field("device_id")
        .eq("fake-device-1")
        .and(field("day").eq(day));

    let oldest = readings
        .list(&ctx(), &partition, &[], Page::first(10))
        .await
        .unwrap();
    let minutes: Vec<f64> = oldest.items.iter().map(|r| r.reading).collect();
    assert_eq!(minutes, (0..10).map(f64::from).collect::<Vec<_>>());

    let newest_first = [SortKey::desc("at"), SortKey::desc("id")];
    let newest = readings
        .list(&ctx(), &partition, &newest_first, Page::first(3))
        .await
        .unwrap();
    let minutes: Vec<f64> = newest.items.iter().map(|r| r.reading).collect();
    assert_eq!(minutes, [29.0, 28.0, 27.0]);

    let since = Utc.with_ymd_and_hms(2026, 11, 26, 8, 20, 0).unwrap();
    let window = partition.clone().and(field("at").gte(since));
    assert_eq!(readings.count(&ctx(), &window).await.unwrap(), 10);
    assert_eq!(readings.count(&ctx(), &partition).await.unwrap(), 30);

    // Every other access path is refused, naming the key it needs.
    let refusals: Vec<(&str, Filter)> = vec![
        (
            "non-key field",
            partition.clone().and(field("reading").gt(3.0)),
        ),
        (
            "partial partition key",
            field("device_id").eq("fake-device-1"),
        ),
        ("no filter", Filter::All),
        ("inequality", partition.clone().and(field("at").ne(since))),
    ];
    for (case, filter) in refusals {
        let err = readings
            .list(&ctx(), &filter, &[], Page::first(10))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{case}: {err}");
        assert!(err.to_string().contains("device_id, day"), "{case}: {err}");
    }
    let by_value = readings
        .list(
            &ctx(),
            &partition,
            &[SortKey::asc("reading")],
            Page::first(10),
        )
        .await
        .unwrap_err();
    assert_eq!(by_value.kind(), ErrorKind::Unsupported, "{by_value}");
    let by_id = readings.get(&ctx(), &Uuid::new_v4()).await.unwrap_err();
    assert_eq!(by_id.kind(), ErrorKind::Unsupported, "{by_id}");
    let offset = readings
        .list(
            &ctx(),
            &partition,
            &[],
            Page::Offset {
                offset: 5,
                limit: 5,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(offset.kind(), ErrorKind::Unsupported, "{offset}");
    common::drop_keyspace(&store).await;
}

#[tokio::test]
async fn a_missing_keyspace_or_table_is_named_and_points_at_migrate() {
    // Connected to a keyspace nobody created.
    let store = common::store().await;
    let flags: Repository<FlagSetting> = Repository::new(store.records()).unwrap();
    let err = flags.get(&ctx(), &Uuid::new_v4()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.is_temporary());
    let keyspace = store.keyspace();
    assert!(
        err.to_string()
            .contains(&format!("keyspace {keyspace} does not exist"))
            && err.to_string().contains("udl migrate up"),
        "{err}"
    );
    let health = store.health(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(health.kind(), ErrorKind::Config, "{health}");
    assert!(health.to_string().contains(keyspace), "{health}");

    // The keyspace exists, the table does not.
    ScyllaMigrator::new(vec![CqlMigration::new(1, "nothing", vec![])])
        .unwrap()
        .up(&store)
        .await
        .unwrap();
    let err = flags.get(&ctx(), &Uuid::new_v4()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("table") && err.to_string().contains("flag_settings"),
        "{err}"
    );
    assert!(store.health(Duration::from_secs(5)).await.is_ok());
    common::drop_keyspace(&store).await;
}
