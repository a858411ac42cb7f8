//! Redis structures against the raw client doing the same commands: an embedding cache batch
//! of 100 vectors (MGET and pipelined PSETEX) and a rate-limit check (EVALSHA of the same script).

use std::sync::Arc;
use std::time::Duration;

use udl::redis::{EmbeddingCache, RateLimit, RateLimiter, RedisStore, GCRA_SCRIPT};
use udl::Result;
use udl_testkit::servers;

use crate::measure::{header, scenario, Plan};

const BATCH: usize = 100;
const DIMENSION: usize = 384;
const MODEL: &str = "fake-embed-384";
const TTL: Duration = Duration::from_secs(600);

/// Runs the Redis scenarios and prints their lines.
pub async fn run(plan: &Plan) -> Result<()> {
    let prefix = format!("{}:", servers::unique_namespace("bench"));
    let vars = [
        ("UDL__REDIS__URL", servers::redis_url()),
        ("UDL__REDIS__KEY_PREFIX", prefix.clone()),
    ];
    let config = udl::config::from_sources(None, vars.map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| udl::Error::new(udl::ErrorKind::Config, e.to_string()))?;
    let redis = RedisStore::connect(
        config
            .store::<udl::redis::RedisConfig>()
            .expect("redis configured"),
    )
    .await?;
    header();
    let outcome = embeddings(&redis, plan).await;
    rate_limit(&redis, plan).await;
    crate::cache::delete_prefixed(&redis, &prefix).await;
    outcome
}

async fn embeddings(redis: &RedisStore, plan: &Plan) -> Result<()> {
    let cache = EmbeddingCache::new(redis.clone(), TTL);
    let texts: Arc<Vec<String>> = Arc::new(
        (0..BATCH)
            .map(|i| format!("fake chunk of therapeutic content number {i}"))
            .collect(),
    );
    let vectors: Vec<Vec<f32>> = (0..BATCH)
        .map(|i| (0..DIMENSION).map(|d| (i * d) as f32 * 1e-3).collect())
        .collect();
    let entries: Vec<(&str, &[f32])> = texts
        .iter()
        .map(String::as_str)
        .zip(vectors.iter().map(Vec::as_slice))
        .collect();
    cache.set_many(MODEL, &entries).await?;
    // The raw side moves the very bytes udl stored, under the same keys.
    let keys: Arc<Vec<String>> = Arc::new(texts.iter().map(|t| cache.key(MODEL, t)).collect());
    let mut conn = redis.connection();
    let stored: Vec<Vec<u8>> = redis::cmd("MGET")
        .arg(&*keys)
        .query_async(&mut conn)
        .await
        .map_err(|e| udl::redis::classify(&e, "bench"))?;
    let stored = Arc::new(stored);

    let (udl_cache, udl_texts) = (cache.clone(), Arc::clone(&texts));
    let (raw_redis, raw_keys) = (redis.clone(), Arc::clone(&keys));
    scenario(
        plan,
        "embedding_get_100",
        move |_| {
            let (cache, texts) = (udl_cache.clone(), Arc::clone(&udl_texts));
            async move {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let found = cache
                    .get_many(MODEL, DIMENSION, &refs)
                    .await
                    .expect("udl get");
                assert!(found.iter().all(Option::is_some));
            }
        },
        move |_| {
            let (mut conn, keys) = (raw_redis.connection(), Arc::clone(&raw_keys));
            async move {
                let found: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(&*keys)
                    .query_async(&mut conn)
                    .await
                    .expect("raw mget");
                assert!(found.iter().all(Option::is_some));
            }
        },
    )
    .await;

    let vectors = Arc::new(vectors);
    let (udl_cache, udl_texts) = (cache.clone(), Arc::clone(&texts));
    let (raw_redis, raw_keys) = (redis.clone(), Arc::clone(&keys));
    scenario(
        plan,
        "embedding_set_100",
        move |_| {
            let (cache, texts, vectors) = (
                udl_cache.clone(),
                Arc::clone(&udl_texts),
                Arc::clone(&vectors),
            );
            async move {
                let entries: Vec<(&str, &[f32])> = texts
                    .iter()
                    .map(String::as_str)
                    .zip(vectors.iter().map(Vec::as_slice))
                    .collect();
                cache.set_many(MODEL, &entries).await.expect("udl set");
            }
        },
        move |_| {
            let (mut conn, keys, stored) = (
                raw_redis.connection(),
                Arc::clone(&raw_keys),
                Arc::clone(&stored),
            );
            async move {
                let mut pipe = redis::pipe();
                for (key, bytes) in keys.iter().zip(stored.iter()) {
                    pipe.pset_ex(key, bytes, TTL.as_millis() as u64).ignore();
                }
                pipe.query_async::<()>(&mut conn)
                    .await
                    .expect("raw pipeline");
            }
        },
    )
    .await;
    Ok(())
}

async fn rate_limit(redis: &RedisStore, plan: &Plan) {
    // Generous enough that both sides are admitted, so both run the script's whole path.
    let limit = RateLimit {
        limit: 1_000,
        period: Duration::from_millis(1),
    };
    let limiter = RateLimiter::new(redis.clone());
    let raw_redis = redis.clone();
    let script = redis::Script::new(GCRA_SCRIPT);
    scenario(
        plan,
        "rate_limit_check",
        move |n| {
            let limiter = limiter.clone();
            async move {
                let subject = format!("udl-{}", n % 1_000);
                let decision = limiter.check(&subject, limit).await.expect("udl check");
                assert!(!decision.degraded);
            }
        },
        move |n| {
            let (mut conn, script) = (raw_redis.connection(), script.clone());
            let key = raw_redis.key(&format!("rl:raw-{}", n % 1_000));
            async move {
                let (_allowed, _retry): (i64, i64) = script
                    .key(key)
                    .arg(1)
                    .arg(limit.limit)
                    .invoke_async(&mut conn)
                    .await
                    .expect("raw evalsha");
            }
        },
    )
    .await;
}
