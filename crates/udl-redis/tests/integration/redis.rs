//! The Redis backend on real servers: health, embedding cache, rate limiting, outages.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use udl_core::ErrorKind;
use udl_redis::{CoalescedGet, EmbeddingCache, OnOutage, RateLimit, RateLimiter, RedisStore};

#[tokio::test]
async fn health_echoes_a_unique_token() {
    let s = common::store().await;
    assert!(s.health(Duration::from_secs(2)).await.is_ok());
}

#[tokio::test]
async fn unreachable_server_is_temporary_unavailable() {
    let err = RedisStore::connect(&common::config("redis://:fake-s3cret@127.0.0.1:1/", "x:"))
        .await
        .err()
        .expect("nothing on port 1");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(!format!("{err} {err:?}").contains("fake-s3cret"));
}

#[tokio::test]
async fn embedding_cache_round_trips_in_batches_and_keys_hide_text() {
    let s = common::store().await;
    let cache = EmbeddingCache::new(s.clone(), Duration::from_secs(600));
    let a = [0.25_f32, -1.0, 2.5];
    let b = [1.0_f32, 0.0, -0.5];
    cache
        .set_many(
            "fake-embed",
            &[("fake patient says hello", &a), ("second text", &b)],
        )
        .await
        .unwrap();
    let got = cache
        .get_many(
            "fake-embed",
            3,
            &[
                "  fake patient   says hello ",
                "second text",
                "never cached",
            ],
        )
        .await
        .unwrap();
    assert_eq!(got, vec![Some(a.to_vec()), Some(b.to_vec()), None]);
    assert_eq!(
        cache
            .get_many("other-model", 3, &["second text"])
            .await
            .unwrap(),
        vec![None]
    );
    assert_eq!(
        cache
            .get_many("fake-embed", 4, &["second text"])
            .await
            .unwrap(),
        vec![None],
        "dimension mismatch is a miss"
    );
    let key = cache.key("fake-embed", "fake patient says hello");
    assert!(!key.contains("patient"), "{key}");
    let mut conn = s.connection();
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 600, "ttl {ttl}");
    cache
        .forget("fake-embed", "fake patient says hello")
        .await
        .unwrap();
    assert_eq!(
        cache
            .get_many("fake-embed", 3, &["fake patient says hello"])
            .await
            .unwrap(),
        vec![None]
    );
    common::cleanup(&s).await;
}

#[tokio::test]
async fn rate_limit_never_admits_more_than_the_limit_under_concurrency() {
    let s = common::store().await;
    let limiter = Arc::new(RateLimiter::new(s.clone()));
    let limit = RateLimit {
        limit: 10,
        period: Duration::from_secs(60),
    };
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.check("user-fake-1", limit).await.unwrap() })
        })
        .collect();
    let mut decisions = Vec::new();
    for t in tasks {
        decisions.push(t.await.unwrap());
    }
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 10);
    assert!(decisions.iter().all(|d| !d.degraded));
    let denied = decisions.iter().find(|d| !d.allowed).unwrap();
    assert!(denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_secs(6));
    let other = limiter.check("user-fake-2", limit).await.unwrap();
    assert!(other.allowed, "limits are per subject");
    common::cleanup(&s).await;
}

#[tokio::test]
async fn outage_follows_the_declared_policy() {
    let mut server = common::PrivateRedis::start().await;
    let s = RedisStore::connect(&common::config(&server.url, "outage:"))
        .await
        .unwrap();
    let limit = RateLimit {
        limit: 5,
        period: Duration::from_secs(60),
    };
    let open = RateLimiter::new(s.clone());
    let closed = RateLimiter::new(s.clone()).on_outage(OnOutage::Deny);
    assert!(open.check("u", limit).await.unwrap().allowed);
    server.stop();
    let d = open.check("u", limit).await.unwrap();
    assert!(
        d.allowed && d.degraded,
        "rate limits fail open by default: {d:?}"
    );
    let d = closed.check("u", limit).await.unwrap();
    assert!(!d.allowed && d.degraded, "{d:?}");
    let err = EmbeddingCache::new(s, Duration::from_secs(60))
        .get_many("m", 3, &["t"])
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.is_temporary());
}

#[tokio::test]
async fn cached_embeddings_expire_after_their_ttl() {
    let s = common::store().await;
    let cache = EmbeddingCache::new(s.clone(), Duration::from_millis(150));
    cache
        .set_many("fake-embed", &[("short lived", &[1.0, 2.0])])
        .await
        .unwrap();
    assert!(cache
        .get_many("fake-embed", 2, &["short lived"])
        .await
        .unwrap()[0]
        .is_some());
    // Redis expires the key on its own clock; watch for it with a deadline, no fixed sleep.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if cache
            .get_many("fake-embed", 2, &["short lived"])
            .await
            .unwrap()[0]
            .is_none()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "entry never expired");
        tokio::task::yield_now().await;
    }
    common::cleanup(&s).await;
}

#[tokio::test]
async fn coalesced_gets_each_receive_their_own_value() {
    let s = common::store().await;
    let mut conn = s.connection();
    let mut pipe = redis::pipe();
    for i in 0..300 {
        pipe.set(s.key(&format!("k{i}")), format!("fake value {i}"))
            .ignore();
    }
    pipe.query_async::<()>(&mut conn).await.unwrap();
    let gets = CoalescedGet::new(&s);
    // 300 at once (more than one MGET holds) plus keys that do not exist.
    let answers = futures_util::future::join_all((0..320).map(|i| {
        let (gets, key) = (gets.clone(), s.key(&format!("k{i}")));
        async move { (i, gets.get(key).await.unwrap()) }
    }))
    .await;
    for (i, value) in answers {
        let expected = (i < 300).then(|| format!("fake value {i}").into_bytes());
        assert_eq!(value, expected, "key {i}");
    }
    common::cleanup(&s).await;
}

#[tokio::test]
async fn coalesced_gets_fail_cleanly_when_redis_is_gone() {
    let mut server = common::PrivateRedis::start().await;
    let s = RedisStore::connect(&common::config(&server.url, "coalesce:"))
        .await
        .unwrap();
    let gets = CoalescedGet::new(&s);
    assert_eq!(gets.get(s.key("absent")).await.unwrap(), None);
    server.stop();
    let answers =
        futures_util::future::join_all((0..20).map(|i| gets.get(s.key(&format!("k{i}"))))).await;
    for answer in answers {
        let err = answer.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{err}"
        );
        assert!(err.is_temporary());
    }
}
