//! Crash tests: a server is killed with SIGKILL under a steady stream of udl writes, started
//! again with `scripts/services up`, and every write udl acknowledged is found afterwards
//! (PostgreSQL, MongoDB, FerretDB, Cassandra). And failover: the primary of a three-member
//! MongoDB replica set is killed under load; udl carries on with the new primary.
//!
//! A test binary of its own: cargo runs test binaries one after another, so no other test
//! meets a killed server, and the tests here take turns (`ONE_CRASH_AT_A_TIME`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use udl_config::StoreConfig as _;
use udl_config::UdlConfig;
use udl_core::{AccessContext, Entity as _, Purpose, RecordStore, Repository, Role};
use udl_metrics::Metrics;
use udl_mongo::MongoStore;
use udl_postgres::{Migration, Migrator, PgStore};
use udl_resilience::{ResilienceConfig, ResilientStore};
use udl_scylla::ScyllaStore;
use udl_testkit::fixtures::{note, Note, NOTES_POSTGRES_DDL};
use udl_testkit::services::ReplicaSet3;
use udl_testkit::{servers, services};
use uuid::Uuid;

static ONE_CRASH_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Writers running at once.
const WRITERS: usize = 4;
/// Writes acknowledged before the crash, and again after the restart.
const ACKNOWLEDGED_BEFORE: usize = 300;
const ACKNOWLEDGED_AFTER: usize = 100;

fn ctx() -> AccessContext {
    AccessContext::new("crash-test", Role::Service, Purpose::Operations).unwrap()
}

fn config(vars: Vec<(&str, String)>) -> UdlConfig {
    UdlConfig::from_sources(
        &[
            udl_postgres::PostgresConfig::READER,
            udl_mongo::MongoConfig::READER,
            udl_scylla::ScyllaConfig::READER,
        ],
        None,
        vars.into_iter().map(|(k, v)| (k.to_owned(), v)),
    )
    .unwrap()
}

type Connect = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn RecordStore>>>>>;

/// A store's notes, connected afresh on demand, in a namespace of the test's own.
struct Subject {
    /// The server's name for `scripts/services`.
    server: &'static str,
    connect: Connect,
}

async fn postgres() -> Subject {
    let schema = servers::unique_namespace("crash");
    let vars = move || {
        config(vec![
            ("UDL__POSTGRES__URL", servers::postgres_url()),
            ("UDL__POSTGRES__SCHEMA", schema.clone()),
            ("UDL__POSTGRES__POOL__MIN", "0".into()),
        ])
    };
    let pg = PgStore::connect(vars().store::<udl_postgres::PostgresConfig>().unwrap())
        .await
        .unwrap();
    Migrator::new(vec![Migration::new(1, "notes", NOTES_POSTGRES_DDL)])
        .unwrap()
        .up(&pg)
        .await
        .unwrap();
    Subject {
        server: "postgres",
        connect: Box::new(move || {
            let config = vars();
            Box::pin(async move {
                let pg = PgStore::connect(config.store::<udl_postgres::PostgresConfig>().unwrap())
                    .await
                    .unwrap();
                pg.records()
            })
        }),
    }
}

/// `server` (`mongodb` or `ferretdb`) at `url`.
async fn mongo_on(server: &'static str, url: String) -> Subject {
    let database = servers::unique_namespace("crash");
    Subject {
        server,
        connect: Box::new(move || {
            let config = config(vec![
                ("UDL__MONGO__URL", url.clone()),
                ("UDL__MONGO__DATABASE", database.clone()),
            ]);
            Box::pin(async move {
                let mongo = MongoStore::connect(config.store::<udl_mongo::MongoConfig>().unwrap())
                    .await
                    .unwrap();
                mongo.records()
            })
        }),
    }
}

async fn scylla() -> Subject {
    let keyspace = servers::unique_namespace("crash");
    let vars = move || {
        config(vec![
            ("UDL__SCYLLA__NODES", servers::scylla_node()),
            ("UDL__SCYLLA__KEYSPACE", keyspace.clone()),
            ("UDL__SCYLLA__CONSISTENCY", "one".into()),
        ])
    };
    let store = ScyllaStore::connect(vars().store::<udl_scylla::ScyllaConfig>().unwrap())
        .await
        .unwrap();
    let table = udl_scylla::cql::create_table(Note::meta());
    udl_scylla::ScyllaMigrator::new(vec![udl_scylla::CqlMigration::new(
        1,
        "notes",
        vec![table.into()],
    )])
    .unwrap()
    .up(&store)
    .await
    .unwrap();
    Subject {
        server: "cassandra",
        connect: Box::new(move || {
            let config = vars();
            Box::pin(async move {
                let store =
                    ScyllaStore::connect(config.store::<udl_scylla::ScyllaConfig>().unwrap())
                        .await
                        .unwrap();
                store.records()
            })
        }),
    }
}

fn layered(records: Arc<dyn RecordStore>) -> Repository<Note> {
    let store = ResilientStore::new(
        records,
        ResilienceConfig::default(),
        Arc::new(Metrics::new()),
    );
    Repository::new(store as Arc<dyn RecordStore>).unwrap()
}

/// Waits until `acknowledged` holds at least `count` writes.
async fn until_acknowledged(acknowledged: &Mutex<Vec<Uuid>>, count: usize, deadline: Duration) {
    let until = Instant::now() + deadline;
    while acknowledged.lock().unwrap().len() < count {
        assert!(
            Instant::now() < until,
            "writes were not acknowledged in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn kill_under_load_loses_no_acknowledged_write(subject: Subject) {
    let _turn = ONE_CRASH_AT_A_TIME.lock().await;
    let _restart = services::RestartOnDrop;
    let notes = Arc::new(layered((subject.connect)().await));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (notes, acknowledged, stop) = (
                Arc::clone(&notes),
                Arc::clone(&acknowledged),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut n = w as i64 * 1_000_000;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let written = note(n);
                    match notes.create(&ctx(), written).await {
                        Ok(id) => acknowledged.lock().unwrap().push(id),
                        // Paced while the server is away; the failure is the point.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();

    until_acknowledged(&acknowledged, ACKNOWLEDGED_BEFORE, Duration::from_secs(60)).await;
    let server = subject.server;
    tokio::task::spawn_blocking(move || services::crash(server))
        .await
        .unwrap();
    let at_crash = acknowledged.lock().unwrap().len();
    tokio::task::spawn_blocking(services::up).await.unwrap();
    until_acknowledged(
        &acknowledged,
        at_crash + ACKNOWLEDGED_AFTER,
        Duration::from_secs(120),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }

    let reader = layered((subject.connect)().await);
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut lost = 0;
    for id in &acknowledged {
        if reader.get(&ctx(), id).await.unwrap().is_none() {
            lost += 1;
        }
    }
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged writes to {server} were lost in the crash",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_load_loses_no_acknowledged_write() {
    kill_under_load_loses_no_acknowledged_write(postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_killed_under_load_loses_no_acknowledged_write() {
    let mongodb = mongo_on("mongodb", servers::mongo_url()).await;
    kill_under_load_loses_no_acknowledged_write(mongodb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferretdb_killed_under_load_loses_no_acknowledged_write() {
    let ferretdb = mongo_on("ferretdb", servers::ferretdb_url()).await;
    kill_under_load_loses_no_acknowledged_write(ferretdb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_killed_under_load_loses_no_acknowledged_write() {
    kill_under_load_loses_no_acknowledged_write(scylla().await).await;
}

/// A call's outcome while the primary is being replaced: how long it took, and, when it
/// failed, whether the error said it was temporary.
type CallRecord = (Duration, Option<bool>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_primary_killed_under_load_fails_over_keeping_every_acknowledged_write() {
    let _turn = ONE_CRASH_AT_A_TIME.lock().await;
    let set = tokio::task::spawn_blocking(ReplicaSet3::up).await.unwrap();
    let settings = config(vec![
        ("UDL__MONGO__URL", ReplicaSet3::url()),
        (
            "UDL__MONGO__DATABASE",
            servers::unique_namespace("failover"),
        ),
    ]);
    let store = MongoStore::connect(settings.store::<udl_mongo::MongoConfig>().unwrap())
        .await
        .unwrap();
    let resilience = ResilienceConfig::default();
    // The longest a call may take: every attempt timing out, with the longest pause between.
    let attempts = resilience.backoff.max_attempts;
    let bound = resilience.timeout * attempts
        + resilience.backoff.max * attempts.saturating_sub(1)
        + Duration::from_secs(1);
    let notes = Arc::new(layered(store.records()));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let calls: Arc<Mutex<Vec<CallRecord>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (notes, acknowledged, calls, stop) = (
                Arc::clone(&notes),
                Arc::clone(&acknowledged),
                Arc::clone(&calls),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut n = w as i64 * 1_000_000;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let started = Instant::now();
                    let outcome = notes.create(&ctx(), note(n)).await;
                    let took = started.elapsed();
                    match outcome {
                        Ok(id) => {
                            acknowledged.lock().unwrap().push(id);
                            calls.lock().unwrap().push((took, None));
                        }
                        Err(e) => {
                            calls.lock().unwrap().push((took, Some(e.is_temporary())));
                            // Paced while there is no primary; the failure is the point.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();

    until_acknowledged(&acknowledged, 200, Duration::from_secs(60)).await;
    let hello = store
        .database()
        .run_command(mongodb::bson::doc! { "hello": 1 })
        .await
        .unwrap();
    let primary: u16 = hello
        .get_str("primary")
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    tokio::task::spawn_blocking(move || ReplicaSet3::crash(primary))
        .await
        .unwrap();
    let at_kill = acknowledged.lock().unwrap().len();
    // Without restarting anything: the survivors elect a new primary and udl finds it.
    until_acknowledged(&acknowledged, at_kill + 100, Duration::from_secs(120)).await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }

    let calls = calls.lock().unwrap().clone();
    let failed: Vec<&CallRecord> = calls.iter().filter(|(_, e)| e.is_some()).collect();
    assert!(
        failed.iter().all(|(_, temporary)| *temporary == Some(true)),
        "every failure during the election is temporary: {failed:?}"
    );
    let longest = calls.iter().map(|(took, _)| *took).max().unwrap();
    assert!(
        longest <= bound,
        "a call took {longest:?}, past its timeouts ({bound:?})"
    );
    let hello = store
        .database()
        .run_command(mongodb::bson::doc! { "hello": 1 })
        .await
        .unwrap();
    assert_ne!(
        hello.get_str("primary").unwrap(),
        format!("127.0.0.1:{primary}"),
        "a new primary"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut lost = 0;
    for id in &acknowledged {
        if notes.get(&ctx(), id).await.unwrap().is_none() {
            lost += 1;
        }
    }
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged writes were lost in the failover",
        acknowledged.len()
    );
    println!(
        "failover: {} writes acknowledged ({at_kill} before the kill), {} calls failed meanwhile, the longest call took {longest:?}",
        acknowledged.len(),
        failed.len()
    );
    store
        .database()
        .client()
        .clone()
        .shutdown()
        .immediate(true)
        .await;
    drop(set);
}
