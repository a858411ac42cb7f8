//! Tiered cache: L1 hit latency, loads caused by a stampede on one cold key, and an L2 hit
//! through udl against a raw Redis GET of the same bytes.

use std::sync::Arc;
use std::time::Instant;

use udl::postgres::{Migration, Migrator, PgStore};
use udl::redis::RedisStore;
use udl::{RecordStore, Repository, Result};
use udl_cache::{CacheConfig, CachedStore};
use udl_testkit::servers;

use crate::fixture::{ctx, row, BenchRow};
use crate::measure::{header, scenario, Plan};

const L1_SAMPLES: usize = 200_000;
/// Concurrent readers of one cold key.
const STAMPEDE: usize = 1_000;

/// Runs the cache scenarios and prints their lines.
pub async fn run(plan: &Plan) -> Result<()> {
    let schema = servers::unique_namespace("bench");
    let prefix = format!("{}:", servers::unique_namespace("bench"));
    let vars = [
        ("UDL__POSTGRES__URL", servers::postgres_url()),
        ("UDL__POSTGRES__SCHEMA", schema.clone()),
        ("UDL__REDIS__URL", servers::redis_url()),
        ("UDL__REDIS__KEY_PREFIX", prefix.clone()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let pg = PgStore::connect(
        config
            .store::<udl::postgres::PostgresConfig>()
            .expect("postgres configured"),
    )
    .await?;
    let redis = RedisStore::connect(
        config
            .store::<udl::redis::RedisConfig>()
            .expect("redis configured"),
    )
    .await?;
    let ddl = "CREATE TABLE bench_events (id UUID PRIMARY KEY, owner TEXT NOT NULL, active BOOLEAN NOT NULL,
        score DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, version BIGINT NOT NULL)";
    Migrator::new(vec![Migration::new(1, "bench_events", ddl)])?
        .up(&pg)
        .await?;
    let outcome = scenarios(&pg, &redis, plan).await;
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(pg.pool())
        .await;
    delete_prefixed(&redis, &prefix).await;
    outcome
}

/// Removes every key the benchmark wrote under `prefix`.
pub async fn delete_prefixed(redis: &RedisStore, prefix: &str) {
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _ = redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await;
    }
}

async fn scenarios(pg: &PgStore, redis: &RedisStore, plan: &Plan) -> Result<()> {
    let hot = row(1);
    let id = hot.id;
    pg.repository::<BenchRow>()?.create(ctx(), hot).await?;

    let with_l1 = CachedStore::new(pg.records(), redis.clone(), CacheConfig::default()).await?;
    let with_l1_stats = Arc::clone(&with_l1);
    let cached: Repository<BenchRow> = Repository::new(with_l1 as Arc<dyn RecordStore>)?;
    cached.get(ctx(), &id).await?;
    let mut samples = Vec::with_capacity(L1_SAMPLES);
    for _ in 0..L1_SAMPLES {
        let started = Instant::now();
        let found = cached.get(ctx(), &id).await?;
        samples.push(started.elapsed());
        assert!(found.is_some());
    }
    samples.sort();
    println!("cache: L1 hit through Repository::get, {L1_SAMPLES} sequential reads");
    println!(
        "l1_hit_median_ns         {:>12}",
        samples[L1_SAMPLES / 2].as_nanos()
    );
    println!(
        "l1_hit_p99_ns            {:>12}",
        samples[L1_SAMPLES * 99 / 100].as_nanos()
    );

    if plan.wants("l2_hit_vs_raw_get") {
        let no_l1 = CacheConfig {
            l1_capacity: 0,
            ..CacheConfig::default()
        };
        let l2_only: Repository<BenchRow> = Repository::new(
            CachedStore::new(pg.records(), redis.clone(), no_l1).await? as Arc<dyn RecordStore>,
        )?;
        l2_only.get(ctx(), &id).await?;
        let l2_key = find_l2_key(redis).await;
        header();
        let raw_redis = redis.clone();
        scenario(
            plan,
            "l2_hit_vs_raw_get",
            move |_| {
                let repo = l2_only.clone();
                async move {
                    assert!(repo.get(ctx(), &id).await.expect("udl L2 get").is_some());
                }
            },
            move |_| {
                let (mut conn, key) = (raw_redis.connection(), l2_key.clone());
                async move {
                    let bytes: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .expect("raw get");
                    assert!(bytes.is_some());
                }
            },
        )
        .await;
    }
    // Last: its record would be a second L2 entry for find_l2_key.
    stampede(pg, &with_l1_stats, &cached).await
}

/// 1,000 concurrent reads of one key nobody has read yet: how many reach PostgreSQL.
async fn stampede(pg: &PgStore, cache: &CachedStore, cached: &Repository<BenchRow>) -> Result<()> {
    let cold = row(2);
    let id = cold.id;
    pg.repository::<BenchRow>()?.create(ctx(), cold).await?;
    let before = cache.stats().loads;
    let start = Arc::new(tokio::sync::Barrier::new(STAMPEDE));
    let readers: Vec<_> = (0..STAMPEDE)
        .map(|_| {
            let (cached, start) = (cached.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                cached.get(ctx(), &id).await
            })
        })
        .collect();
    for reader in readers {
        let found = reader.await.expect("reader task")?;
        assert!(found.is_some(), "every reader sees the record");
    }
    println!(
        "stampede_{STAMPEDE}_loads      {:>12}",
        cache.stats().loads - before
    );
    Ok(())
}

/// The one L2 record key the warm-up wrote.
async fn find_l2_key(redis: &RedisStore) -> String {
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(redis.key("c:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    keys.into_iter().next().expect("warm-up wrote an L2 entry")
}
