//! Faults between udl and the real servers (PostgreSQL, MongoDB via FerretDB, ScyllaDB via
//! Cassandra), injected by toxiproxy: a slow server makes calls time out at the configured
//! bound and opens the breaker,
//! which then fails fast; when the server answers again the breaker probes and closes. A cut
//! link behaves the same way, and nothing acknowledged before the fault is lost. A link cut
//! in the middle of a steady stream of writes loses no acknowledged write and hangs no call.
//!
//! Every scenario writes notes whose PHI field holds a canary value, and ends by scanning
//! everything this binary logged (at TRACE, every crate) and its metrics for canaries.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use udl_config::StoreConfig as _;
use udl_core::{AccessContext, ErrorKind, Purpose, RecordStore, Repository, Role};
use udl_metrics::Metrics;
use udl_mongo::MongoStore;
use udl_postgres::{Migration, Migrator, PgStore};
use udl_resilience::{Backoff, BreakerConfig, BreakerState, ResilienceConfig, ResilientStore};
use udl_scylla::ScyllaStore;
use udl_testkit::fixtures::{note, Note, NOTES_POSTGRES_DDL};
use udl_testkit::servers;
use udl_testkit::toxiproxy::Proxy;

const TIMEOUT: Duration = Duration::from_millis(300);

/// Marks PHI planted in test notes; it must never show up in logs or metrics.
const CANARY: &str = "CANARY-PHI-7c1e";

/// A note whose PHI field carries the canary.
fn phi_note(n: i64) -> Note {
    Note {
        body: format!("{CANARY} fake diagnosis {n}"),
        ..note(n)
    }
}

/// No canary in anything logged so far nor in `metrics`, and the logs did see the faults.
fn assert_no_phi_in_logs_or(metrics: &Metrics) {
    let logs = udl_testkit::logs::captured();
    assert!(logs.contains("udl.store"), "operations are traced");
    assert!(!logs.contains(CANARY), "PHI in the logs");
    let text = metrics.render();
    assert!(text.contains("udl_operation_duration_seconds_count"));
    assert!(!text.contains(CANARY), "PHI in the metrics");
}

fn ctx() -> AccessContext {
    AccessContext::new("fault-test", Role::Service, Purpose::Operations).unwrap()
}

/// PostgreSQL reached through `proxy` on at most `connections` pooled connections, in a
/// schema of its own holding `conformance_notes`.
async fn postgres_behind(proxy: &Proxy, connections: u32) -> PgStore {
    let direct = servers::postgres_url();
    let url = direct.replacen("127.0.0.1:5432", proxy.listen(), 1);
    assert_ne!(url, direct, "the test server URL names 127.0.0.1:5432");
    let vars = [
        ("UDL__POSTGRES__URL", url),
        ("UDL__POSTGRES__SCHEMA", servers::unique_namespace("f")),
        ("UDL__POSTGRES__POOL__MIN", "0".into()),
        ("UDL__POSTGRES__POOL__MAX", connections.to_string()),
        ("UDL__POSTGRES__POOL__ACQUIRE_TIMEOUT", "1s".into()),
        // A request goes out at once on a pooled connection, without a ping whose answer the
        // proxy could hold back first.
        ("UDL__POSTGRES__POOL__TEST_BEFORE_ACQUIRE", "false".into()),
    ];
    let config =
        udl_postgres::PostgresConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
            .unwrap();
    let pg = match PgStore::connect(&config).await {
        Ok(pg) => pg,
        Err(e) => servers::unreachable("PostgreSQL (through toxiproxy)", proxy.listen(), &e),
    };
    Migrator::new(vec![Migration::new(1, "notes", NOTES_POSTGRES_DDL)])
        .unwrap()
        .up(&pg)
        .await
        .unwrap();
    pg
}

fn layered(records: Arc<dyn RecordStore>, metrics: Arc<Metrics>) -> Arc<ResilientStore> {
    ResilientStore::new(
        records,
        ResilienceConfig {
            timeout: TIMEOUT,
            backoff: Backoff {
                max_attempts: 1,
                ..Backoff::default()
            },
            breaker: BreakerConfig {
                consecutive_failures: 3,
                open_for: Duration::from_millis(300),
                probes: 1,
                ..BreakerConfig::default()
            },
            ..ResilienceConfig::default()
        },
        metrics,
    )
}

async fn drop_schema(pg: &PgStore) {
    let sql = format!("DROP SCHEMA \"{}\" CASCADE", pg.schema());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pg.pool())
        .await
        .unwrap();
}

/// Reads until one succeeds (the breaker probing, then closing), within a deadline.
async fn until_answered(notes: &Repository<Note>, id: &uuid::Uuid) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if notes.get(&ctx(), id).await.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "the store never answered again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server behind a proxy, its records through the resilience layer, the same records
/// reached directly (to see what the server holds while the proxy misbehaves), and cleanup.
struct Faulty {
    proxy: Proxy,
    records: Arc<dyn RecordStore>,
    store: Arc<ResilientStore>,
    notes: Repository<Note>,
    direct: Repository<Note>,
    metrics: Arc<Metrics>,
    /// Whether the client has finished with every connection (nothing of its own in flight).
    settled: Box<dyn Fn() -> bool>,
    cleanup: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
}

impl Faulty {
    /// `records` behind the layer, reached through `proxy`; `direct` the same server without
    /// it; `cleanup` removes the test data.
    fn new(
        proxy: Proxy,
        records: Arc<dyn RecordStore>,
        direct: Arc<dyn RecordStore>,
        cleanup: impl std::future::Future<Output = ()> + 'static,
    ) -> Self {
        udl_testkit::logs::capture();
        let metrics = Arc::new(Metrics::new());
        let store = layered(Arc::clone(&records), Arc::clone(&metrics));
        Faulty {
            metrics,
            notes: Repository::new(Arc::clone(&store) as Arc<dyn RecordStore>).unwrap(),
            direct: Repository::new(direct).unwrap(),
            records,
            store,
            proxy,
            settled: Box::new(|| true),
            cleanup: Box::pin(cleanup),
        }
    }
}

async fn postgres() -> Faulty {
    postgres_on(4).await
}

/// [`postgres`] on at most `connections` pooled connections.
async fn postgres_on(connections: u32) -> Faulty {
    let proxy = Proxy::to("127.0.0.1:5432");
    let pg = postgres_behind(&proxy, connections).await;
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", pg.schema().to_owned()),
    ];
    let config =
        udl_postgres::PostgresConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
            .unwrap();
    let direct = PgStore::connect(&config).await.unwrap();
    let records = pg.records();
    let pool = pg.pool().clone();
    let mut faulty = Faulty::new(proxy, records, direct.records(), async move {
        drop_schema(&pg).await
    });
    // sqlx pings a connection as it goes back to the pool, after the call has returned.
    faulty.settled = Box::new(move || pool.num_idle() == pool.size() as usize);
    faulty
}

/// Cassandra through the proxy: the node's announced address is translated to the proxy's,
/// so the driver's pool connections go through it too.
async fn scylla() -> Faulty {
    use udl_core::Entity as _;
    let direct = servers::scylla_node();
    let keyspace = servers::unique_namespace("f");
    // The schema is made directly, without the proxy's short timeouts: a durable schema
    // change can take seconds while other tests make theirs.
    let direct_vars = [
        ("UDL__SCYLLA__NODES", direct.clone()),
        ("UDL__SCYLLA__KEYSPACE", keyspace.clone()),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
    ];
    let direct_config =
        udl_scylla::ScyllaConfig::from_sources(None, direct_vars.map(|(k, v)| (k.to_owned(), v)))
            .unwrap();
    let unproxied = match ScyllaStore::connect(&direct_config).await {
        Ok(s) => s,
        Err(e) => servers::unreachable("Cassandra", &direct, &e),
    };
    let table = udl_scylla::cql::create_table(Note::meta());
    udl_scylla::ScyllaMigrator::new(vec![udl_scylla::CqlMigration::new(
        1,
        "notes",
        vec![table.into()],
    )])
    .unwrap()
    .up(&unproxied)
    .await
    .unwrap();

    let proxy = Proxy::to(&direct);
    let vars = [
        ("UDL__SCYLLA__NODES", proxy.listen().to_owned()),
        (
            "UDL__SCYLLA__ADDRESS_MAP",
            format!("{direct}={}", proxy.listen()),
        ),
        ("UDL__SCYLLA__KEYSPACE", keyspace),
        ("UDL__SCYLLA__CONSISTENCY", "one".to_owned()),
        ("UDL__SCYLLA__REQUEST_TIMEOUT", "1s".to_owned()),
        ("UDL__SCYLLA__POOL__CONNECT_TIMEOUT", "1s".to_owned()),
    ];
    let config =
        udl_scylla::ScyllaConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    let scylla = match ScyllaStore::connect(&config).await {
        Ok(s) => s,
        Err(e) => servers::unreachable("Cassandra (through toxiproxy)", proxy.listen(), &e),
    };
    let records = scylla.records();
    Faulty::new(proxy, records, unproxied.records(), async move {
        let drop = format!("DROP KEYSPACE IF EXISTS \"{}\"", unproxied.keyspace());
        let _ = unproxied
            .session()
            .get_session()
            .query_unpaged(drop, ())
            .await;
    })
}

/// MongoDB (a one-member replica set), reached through a proxy by a direct connection.
async fn mongo() -> Faulty {
    mongo_on("MongoDB", &servers::mongo_url()).await
}

/// The same on FerretDB, the second target.
async fn ferretdb() -> Faulty {
    mongo_on("FerretDB", &servers::ferretdb_url()).await
}

async fn mongo_on(server: &str, direct_url: &str) -> Faulty {
    let upstream = direct_url
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .unwrap();
    let proxy = Proxy::to(upstream);
    let vars = [
        (
            "UDL__MONGO__URL",
            format!("mongodb://{}/?directConnection=true", proxy.listen()),
        ),
        ("UDL__MONGO__DATABASE", servers::unique_namespace("f")),
        ("UDL__MONGO__POOL__ACQUIRE_TIMEOUT", "1s".to_owned()),
    ];
    let config =
        udl_mongo::MongoConfig::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    let mongo = match MongoStore::connect(&config).await {
        Ok(m) => m,
        Err(e) => {
            servers::unreachable(&format!("{server} (through toxiproxy)"), proxy.listen(), &e)
        }
    };
    let direct_vars = [
        ("UDL__MONGO__URL", direct_url.to_owned()),
        ("UDL__MONGO__DATABASE", mongo.database().name().to_owned()),
    ];
    let direct_config =
        udl_mongo::MongoConfig::from_sources(None, direct_vars.map(|(k, v)| (k.to_owned(), v)))
            .unwrap();
    let direct = MongoStore::connect(&direct_config).await.unwrap();
    let records = mongo.records();
    Faulty::new(proxy, records, direct.records(), async move {
        mongo.database().drop().await.unwrap()
    })
}

async fn latency_times_out_at_the_bound_opens_the_breaker_and_recovery_closes_it(f: Faulty) {
    let Faulty {
        proxy,
        store,
        notes,
        metrics,
        cleanup,
        ..
    } = f;
    let n = phi_note(1);
    notes.create(&ctx(), n.clone()).await.unwrap();

    proxy.add_latency(2_000);
    for _ in 0..3 {
        let started = Instant::now();
        let err = notes.get(&ctx(), &n.id).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            started.elapsed() < TIMEOUT * 4,
            "bounded by the timeout, not the latency"
        );
    }
    assert_eq!(store.breaker().state(), BreakerState::Open);
    let started = Instant::now();
    let err = notes.get(&ctx(), &n.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary() && err.to_string().contains("circuit breaker"));
    assert!(
        started.elapsed() < TIMEOUT,
        "an open breaker answers at once"
    );

    proxy.remove_latency();
    until_answered(&notes, &n.id).await;
    assert_eq!(store.breaker().state(), BreakerState::Closed);
    assert!(notes.get(&ctx(), &n.id).await.unwrap() == Some(n));
    assert_eq!(store.breaker().transitions().closed, 1);
    let text = metrics.render();
    assert!(
        text.contains(r#"operation="get",outcome="timeout"} 3"#),
        "{text}"
    );
    assert!(text.contains(r#"state="open"} 1"#), "{text}");
    assert_no_phi_in_logs_or(&metrics);
    cleanup.await;
}

async fn a_cut_link_fails_fast_and_the_store_comes_back(f: Faulty) {
    let Faulty {
        proxy,
        store,
        notes,
        metrics,
        cleanup,
        ..
    } = f;
    let n = phi_note(2);
    notes.create(&ctx(), n.clone()).await.unwrap();

    proxy.set_enabled(false);
    for _ in 0..3 {
        let err = notes.get(&ctx(), &n.id).await.unwrap_err();
        assert!(err.is_temporary(), "{err}");
    }
    assert_eq!(store.breaker().state(), BreakerState::Open);

    proxy.set_enabled(true);
    until_answered(&notes, &n.id).await;
    assert_eq!(store.breaker().state(), BreakerState::Closed);
    // Nothing acknowledged was lost.
    assert!(notes.get(&ctx(), &n.id).await.unwrap() == Some(n));
    assert_no_phi_in_logs_or(&metrics);
    cleanup.await;
}

/// Writers insert notes without pause; the link is cut mid-stream and restored. Every call
/// returns within its bound, and every write that was acknowledged is there afterwards.
async fn a_link_cut_mid_load_loses_no_acknowledged_write(f: Faulty) {
    let Faulty {
        proxy,
        notes,
        metrics,
        cleanup,
        ..
    } = f;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let (failed, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (notes, acknowledged, failed, stop, slowest) = (
                notes.clone(),
                Arc::clone(&acknowledged),
                Arc::clone(&failed),
                Arc::clone(&stop),
                Arc::clone(&slowest),
            );
            tokio::spawn(async move {
                let mut n = w * 100_000;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let note = phi_note(n);
                    let started = Instant::now();
                    let outcome = notes.create(&ctx(), note.clone()).await;
                    let took = started.elapsed();
                    {
                        let mut longest = slowest.lock().unwrap();
                        *longest = (*longest).max(took);
                    }
                    match outcome {
                        Ok(_) => acknowledged.lock().unwrap().push(note),
                        Err(e) => {
                            assert!(e.is_temporary(), "{e}");
                            failed.fetch_add(1, Ordering::SeqCst);
                            // A failing store answers at once; let the others run.
                            tokio::task::yield_now().await;
                        }
                    }
                }
            })
        })
        .collect();
    let acked = || acknowledged.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked() < 50 {
        assert!(Instant::now() < deadline, "writes never flowed");
        tokio::task::yield_now().await;
    }
    proxy.set_enabled(false);
    while failed.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the cut was never noticed");
        tokio::task::yield_now().await;
    }
    proxy.set_enabled(true);
    let before = acked();
    while acked() < before + 50 {
        assert!(Instant::now() < deadline, "writes never resumed");
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < TIMEOUT * 4,
        "a write waited {slowest:?}, past its bound"
    );
    let written = acknowledged.lock().unwrap().clone();
    for note in &written {
        let found = notes.get(&ctx(), &note.id).await.unwrap();
        assert!(
            found.as_ref() == Some(note),
            "an acknowledged write was lost"
        );
    }
    assert_no_phi_in_logs_or(&metrics);
    cleanup.await;
}

/// A caller sending megabyte-long filter values is refused before anything reaches the
/// server, and the breaker every other caller depends on stays closed.
async fn hostile_filter_values_are_refused_and_leave_the_breaker_closed(f: Faulty) {
    let Faulty {
        notes,
        store,
        cleanup,
        ..
    } = f;
    let kept = note(1);
    let id = notes.create(&ctx(), kept).await.unwrap();
    let megabyte = "f".repeat(1 << 20);
    for _ in 0..5 {
        let filter = udl_core::field("title").starts_with(megabyte.as_str());
        let err = notes
            .list(&ctx(), &filter, &[], udl_core::Page::first(10))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.to_string().contains("field title is 1048576 bytes")
                && err.to_string().contains("4096 allowed"),
            "{err}"
        );
        let list = udl_core::field("tag").is_in((0..1001).map(|i| format!("fake-{i}")));
        let err = notes.count(&ctx(), &list).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    assert_eq!(store.breaker().state(), BreakerState::Closed);
    assert!(notes.get(&ctx(), &id).await.unwrap().is_some());
    cleanup.await;
}

#[tokio::test]
async fn postgres_refuses_hostile_filter_values_and_keeps_its_breaker_closed() {
    hostile_filter_values_are_refused_and_leave_the_breaker_closed(postgres().await).await;
}

#[tokio::test]
async fn mongo_refuses_hostile_filter_values_and_keeps_its_breaker_closed() {
    hostile_filter_values_are_refused_and_leave_the_breaker_closed(mongo().await).await;
}

/// Until the server itself holds the note (read without the proxy).
async fn until_stored(direct: &Repository<Note>, id: &uuid::Uuid, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while direct.get(&ctx(), id).await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{what}: the write never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A write whose request reached the server but whose answer did not come back (late, or
/// the link cut before it arrived) is reported as possibly applied, and it was; a write
/// refused before it was sent is not, and it was not.
async fn a_write_whose_answer_is_lost_is_reported_as_possibly_applied(f: Faulty) {
    let Faulty {
        proxy,
        records,
        notes,
        direct,
        settled,
        cleanup,
        ..
    } = f;
    // Connections open and statements prepared, so that requests go out at once.
    // A note of the same shape as the one written next (the same statement, so PostgreSQL's
    // is prepared on the connection already).
    let warm = async |like: &Note| {
        let twin = Note {
            id: uuid::Uuid::new_v4(),
            ..like.clone()
        };
        notes.create(&ctx(), twin).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !settled() {
            assert!(Instant::now() < deadline, "the client never settled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let late = phi_note(10);
    warm(&late).await;
    proxy.add_latency(3_000);
    // The answer comes after the layer's timeout.
    let err = notes.create(&ctx(), late.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.outcome_unknown(), "{err}");
    until_stored(&direct, &late.id, "late answer").await;
    proxy.remove_latency();
    // The connection the late answer was due on is gone; another one is made ready.
    let cut = phi_note(11);
    warm(&cut).await;
    proxy.add_latency(3_000);

    // The link is cut after the server applied the write, before its answer arrived.
    let patient = Arc::new(
        Repository::<Note>::new(ResilientStore::new(
            records,
            ResilienceConfig {
                timeout: Duration::from_secs(30),
                ..ResilienceConfig::default()
            },
            Arc::new(Metrics::new()),
        ) as Arc<dyn RecordStore>)
        .unwrap(),
    );
    let writing = {
        let (cut, patient) = (cut.clone(), Arc::clone(&patient));
        tokio::spawn(async move { patient.create(&ctx(), cut).await })
    };
    until_stored(&direct, &cut.id, "cut link").await;
    proxy.set_enabled(false);
    let err = writing.await.unwrap().unwrap_err();
    assert!(err.outcome_unknown(), "{err}");
    assert!(err.is_temporary(), "{err}");

    // With the link cut, a new write is refused before anything is sent (waiting for the
    // driver to give up, not for the layer's timeout, which could not tell).
    proxy.remove_latency();
    let refused = phi_note(12);
    let err = patient.create(&ctx(), refused.clone()).await.unwrap_err();
    assert!(!err.outcome_unknown(), "{err}");
    proxy.set_enabled(true);
    assert!(direct.get(&ctx(), &refused.id).await.unwrap().is_none());
    cleanup.await;
}

#[tokio::test]
async fn postgres_reports_a_write_whose_answer_is_lost_as_possibly_applied() {
    // One connection, so the one that prepared the statement is the one the write goes out on.
    a_write_whose_answer_is_lost_is_reported_as_possibly_applied(postgres_on(1).await).await;
}

#[tokio::test]
async fn mongo_reports_a_write_whose_answer_is_lost_as_possibly_applied() {
    a_write_whose_answer_is_lost_is_reported_as_possibly_applied(mongo().await).await;
}

#[tokio::test]
async fn scylla_reports_a_write_whose_answer_is_lost_as_possibly_applied() {
    a_write_whose_answer_is_lost_is_reported_as_possibly_applied(scylla().await).await;
}

#[tokio::test]
async fn postgres_link_cut_mid_load_loses_no_acknowledged_write() {
    a_link_cut_mid_load_loses_no_acknowledged_write(postgres().await).await;
}

#[tokio::test]
async fn mongo_link_cut_mid_load_loses_no_acknowledged_write() {
    a_link_cut_mid_load_loses_no_acknowledged_write(mongo().await).await;
}

#[tokio::test]
async fn postgres_latency_times_out_opens_the_breaker_and_recovers() {
    latency_times_out_at_the_bound_opens_the_breaker_and_recovery_closes_it(postgres().await).await;
}

#[tokio::test]
async fn postgres_cut_link_fails_fast_and_recovers() {
    a_cut_link_fails_fast_and_the_store_comes_back(postgres().await).await;
}

#[tokio::test]
async fn mongo_latency_times_out_opens_the_breaker_and_recovers() {
    latency_times_out_at_the_bound_opens_the_breaker_and_recovery_closes_it(mongo().await).await;
}

#[tokio::test]
async fn mongo_cut_link_fails_fast_and_recovers() {
    a_cut_link_fails_fast_and_the_store_comes_back(mongo().await).await;
}

#[tokio::test]
async fn scylla_latency_times_out_opens_the_breaker_and_recovers() {
    latency_times_out_at_the_bound_opens_the_breaker_and_recovery_closes_it(scylla().await).await;
}

#[tokio::test]
async fn scylla_cut_link_fails_fast_and_recovers() {
    a_cut_link_fails_fast_and_the_store_comes_back(scylla().await).await;
}

#[tokio::test]
async fn scylla_link_cut_mid_load_loses_no_acknowledged_write() {
    a_link_cut_mid_load_loses_no_acknowledged_write(scylla().await).await;
}

#[tokio::test]
async fn ferretdb_refuses_hostile_filter_values_and_keeps_its_breaker_closed() {
    hostile_filter_values_are_refused_and_leave_the_breaker_closed(ferretdb().await).await;
}

#[tokio::test]
async fn ferretdb_reports_a_write_whose_answer_is_lost_as_possibly_applied() {
    a_write_whose_answer_is_lost_is_reported_as_possibly_applied(ferretdb().await).await;
}

#[tokio::test]
async fn ferretdb_link_cut_mid_load_loses_no_acknowledged_write() {
    a_link_cut_mid_load_loses_no_acknowledged_write(ferretdb().await).await;
}

#[tokio::test]
async fn ferretdb_latency_times_out_opens_the_breaker_and_recovers() {
    latency_times_out_at_the_bound_opens_the_breaker_and_recovery_closes_it(ferretdb().await).await;
}

#[tokio::test]
async fn ferretdb_cut_link_fails_fast_and_recovers() {
    a_cut_link_fails_fast_and_the_store_comes_back(ferretdb().await).await;
}
