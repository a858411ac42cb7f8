//! PostgreSQL: udl's repository against raw sqlx on the same pool.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use sqlx::{PgPool, Row};
use udl::postgres::{Migration, Migrator, PgStore};
use udl::{Repository, Result};
use udl_resilience::{ResilienceConfig, ResilientStore};
use udl_testkit::servers;
use uuid::Uuid;

use crate::fixture::{ctx, list_owner_page, row, BenchRow, RawRow, CONCURRENCY, OWNERS};
use crate::measure::{compare, header, report, scenario, Plan};

const SEEDED: usize = 10_000;
const BULK_ROWS: usize = 100_000;

const DDL: &str = "CREATE TABLE bench_events (id UUID PRIMARY KEY, owner TEXT NOT NULL,
    active BOOLEAN NOT NULL, score DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, version BIGINT NOT NULL);
    CREATE INDEX bench_events_owner_active ON bench_events (owner, active, id)";
const SELECT_BY_ID: &str = "SELECT id, owner, active, score, payload, created_at, version \
    FROM bench_events WHERE id = $1";
const INSERT: &str = "INSERT INTO bench_events (id, owner, active, score, payload, created_at, \
    version) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const LIST: &str = "SELECT id, owner, active, score, payload, created_at, version \
    FROM bench_events WHERE owner = $1 AND active = $2 ORDER BY id ASC LIMIT 51";

fn decode(r: &sqlx::postgres::PgRow) -> RawRow {
    RawRow {
        id: r.get(0),
        owner: r.get(1),
        active: r.get(2),
        score: r.get(3),
        payload: r.get(4),
        created_at: r.get(5),
        version: r.get(6),
    }
}

/// Runs every PostgreSQL scenario and prints its line.
pub async fn run(plan: &Plan) -> Result<()> {
    let schema = servers::unique_namespace("bench");
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.clone()),
        ("UDL__POSTGRES__POOL__MIN", CONCURRENCY.to_string()),
        ("UDL__POSTGRES__POOL__MAX", CONCURRENCY.to_string()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let store = PgStore::connect(
        config
            .store::<udl::postgres::PostgresConfig>()
            .expect("postgres configured"),
    )
    .await?;
    Migrator::new(vec![Migration::new(1, "bench_events", DDL)])?
        .up(&store)
        .await?;
    let outcome = scenarios(&store, plan).await;
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(store.pool())
        .await;
    outcome
}

async fn scenarios(store: &PgStore, plan: &Plan) -> Result<()> {
    let repo: Repository<BenchRow> = store.repository()?;
    let pool = store.pool().clone();
    let seeded: Vec<BenchRow> = (0..SEEDED).map(row).collect();
    let ids: Arc<Vec<Uuid>> = Arc::new(seeded.iter().map(|r| r.id).collect());
    repo.create_many(ctx(), seeded).await?;
    sqlx::query("ANALYZE bench_events")
        .execute(&pool)
        .await
        .ok();

    println!("postgres: {CONCURRENCY} tasks on one pool of {CONCURRENCY}, {}s per side per round, {} rounds", plan.window.as_secs(), plan.rounds);
    header();

    let (udl_repo, udl_ids, raw_pool, raw_ids) = (
        repo.clone(),
        Arc::clone(&ids),
        pool.clone(),
        Arc::clone(&ids),
    );
    scenario(
        plan,
        "get_by_id",
        move |i| {
            let (repo, ids) = (udl_repo.clone(), Arc::clone(&udl_ids));
            async move {
                let id = ids[(i as usize * 7919) % ids.len()];
                assert!(repo.get(ctx(), &id).await.expect("udl get").is_some());
            }
        },
        move |i| {
            let (pool, ids) = (raw_pool.clone(), Arc::clone(&raw_ids));
            async move {
                let id = ids[(i as usize * 7919) % ids.len()];
                let found = sqlx::query(SELECT_BY_ID)
                    .bind(id)
                    .fetch_optional(&pool)
                    .await
                    .expect("raw get");
                assert!(found.as_ref().map(decode).is_some());
            }
        },
    )
    .await;

    // The resilience layers' cost: the same udl get with every layer on, against none.
    let layered: Repository<BenchRow> = Repository::new(ResilientStore::new(
        store.records(),
        ResilienceConfig::default(),
        Arc::new(udl::Metrics::new()),
    ) as Arc<dyn udl::RecordStore>)?;
    let (bare, on_ids, off_ids) = (repo.clone(), Arc::clone(&ids), Arc::clone(&ids));
    scenario(
        plan,
        "get_layers_on_vs_off",
        move |i| {
            let (repo, ids) = (layered.clone(), Arc::clone(&on_ids));
            async move {
                let id = ids[(i as usize * 7919) % ids.len()];
                assert!(repo.get(ctx(), &id).await.expect("layered get").is_some());
            }
        },
        move |i| {
            let (repo, ids) = (bare.clone(), Arc::clone(&off_ids));
            async move {
                let id = ids[(i as usize * 7919) % ids.len()];
                assert!(repo.get(ctx(), &id).await.expect("bare get").is_some());
            }
        },
    )
    .await;

    let (udl_repo, raw_pool) = (repo.clone(), pool.clone());
    scenario(
        plan,
        "insert_one",
        move |i| {
            let repo = udl_repo.clone();
            async move {
                repo.create(ctx(), row(i as usize))
                    .await
                    .expect("udl insert");
            }
        },
        move |i| {
            let pool = raw_pool.clone();
            async move {
                let r = row(i as usize);
                sqlx::query(INSERT)
                    .bind(r.id)
                    .bind(r.owner)
                    .bind(r.active)
                    .bind(r.score)
                    .bind(r.payload)
                    .bind(r.created_at)
                    .bind(r.version)
                    .execute(&pool)
                    .await
                    .expect("raw insert");
            }
        },
    )
    .await;

    let (udl_repo, raw_pool) = (repo.clone(), pool.clone());
    scenario(
        plan,
        "list_filter2_limit50",
        move |i| {
            let repo = udl_repo.clone();
            async move { list_owner_page(&repo, i).await }
        },
        move |i| {
            let pool = raw_pool.clone();
            async move {
                let rows = sqlx::query(LIST)
                    .bind(format!("owner-{}", i as usize % OWNERS))
                    .bind(true)
                    .fetch_all(&pool)
                    .await
                    .expect("raw list");
                let mut page: Vec<RawRow> = rows.iter().map(decode).collect();
                page.truncate(50);
                assert_eq!(page.len(), 50);
            }
        },
    )
    .await;

    if plan.wants("bulk_insert_100k") {
        let (u, r) = compare(plan.rounds, || bulk_udl(&repo, &pool), || bulk_raw(&pool)).await;
        report("bulk_insert_100k", u, r);
    }
    Ok(())
}

async fn truncate(pool: &PgPool) {
    sqlx::query("TRUNCATE bench_events")
        .execute(pool)
        .await
        .expect("truncate");
}

async fn bulk_udl(repo: &Repository<BenchRow>, pool: &PgPool) -> f64 {
    truncate(pool).await;
    let rows: Vec<BenchRow> = (0..BULK_ROWS).map(row).collect();
    let started = Instant::now();
    let n = repo.create_many(ctx(), rows).await.expect("udl bulk");
    assert_eq!(n as usize, BULK_ROWS);
    BULK_ROWS as f64 / started.elapsed().as_secs_f64()
}

/// Raw COPY in text format, formatting each row by hand as a sqlx user would.
async fn bulk_raw(pool: &PgPool) -> f64 {
    truncate(pool).await;
    let rows: Vec<BenchRow> = (0..BULK_ROWS).map(row).collect();
    let started = Instant::now();
    let mut conn = pool.acquire().await.expect("connection");
    let mut copy = conn
        .copy_in_raw("COPY bench_events (id, owner, active, score, payload, created_at, version) FROM STDIN (FORMAT text)")
        .await
        .expect("copy");
    let mut buf = String::with_capacity(1 << 20);
    for r in rows {
        let _ = writeln!(
            buf,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.id,
            r.owner,
            if r.active { 't' } else { 'f' },
            r.score,
            r.payload,
            r.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            r.version
        );
        if buf.len() >= 1 << 20 {
            copy.send(buf.as_bytes()).await.expect("send");
            buf.clear();
        }
    }
    copy.send(buf.as_bytes()).await.expect("send");
    let n = copy.finish().await.expect("finish");
    assert_eq!(n as usize, BULK_ROWS);
    BULK_ROWS as f64 / started.elapsed().as_secs_f64()
}
