//! Sessions, token revocation, generation cache and real-time counters on the real server.

use crate::common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use udl_core::Sensitivity;
use udl_redis::{Counters, GenerationCache, GenerationKey, RedisStore, SessionStore};

async fn pttl(s: &RedisStore, key: &str) -> i64 {
    let mut conn = s.connection();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn sessions_slide_and_log_out_everywhere() {
    let s = common::store().await;
    let sessions = SessionStore::new(s.clone(), Duration::from_secs(900));
    let a = sessions
        .create("patient-fake-7", serde_json::json!({"device": "phone"}))
        .await
        .unwrap();
    let b = sessions
        .create("patient-fake-7", serde_json::json!({"device": "laptop"}))
        .await
        .unwrap();
    let other = sessions
        .create("clinician-fake-2", serde_json::json!({}))
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(sessions.validate(&a.id).await.unwrap(), Some(a.clone()));

    // Sliding: shorten the expiry by hand, validate, and it is back to the full idle time.
    let key = s.key(&format!("sess:{}", a.id));
    let mut conn = s.connection();
    redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(5_000)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    sessions
        .validate(&a.id)
        .await
        .unwrap()
        .expect("still valid");
    // Back to the whole idle time (`retention.sessions`), to the second.
    let left = pttl(&s, &key).await;
    assert!((899_000..=900_000).contains(&left), "{left} ms left");

    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(s.key("*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.retain(|k| k.contains("patient-fake-7"));
    assert!(keys.is_empty(), "user ids are hashed in keys: {keys:?}");

    assert_eq!(
        sessions.logout_everywhere("patient-fake-7").await.unwrap(),
        2
    );
    assert_eq!(sessions.validate(&a.id).await.unwrap(), None);
    assert_eq!(sessions.validate(&b.id).await.unwrap(), None);
    assert!(
        sessions.validate(&other.id).await.unwrap().is_some(),
        "other users keep theirs"
    );
    sessions.destroy(&other).await.unwrap();
    assert_eq!(sessions.validate(&other.id).await.unwrap(), None);
    common::cleanup(&s).await;
}

#[tokio::test]
async fn revoked_tokens_stay_revoked_until_they_expire() {
    let s = common::store().await;
    let sessions = SessionStore::new(s.clone(), Duration::from_secs(900));
    let exp = Utc::now() + chrono::Duration::minutes(30);
    assert!(!sessions.is_revoked("jti-fake-1").await.unwrap());
    sessions.revoke_token("jti-fake-1", exp).await.unwrap();
    assert!(sessions.is_revoked("jti-fake-1").await.unwrap());
    let mut conn = s.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(s.key("jwt-revoked:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl = pttl(&s, &keys[0]).await;
    assert!(
        ttl > 29 * 60_000 && ttl <= 30 * 60_000,
        "kept until exp: {ttl}"
    );
    sessions
        .revoke_token("jti-fake-2", Utc::now() - chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(
        !sessions.is_revoked("jti-fake-2").await.unwrap(),
        "an expired token needs no entry"
    );
    common::cleanup(&s).await;
}

#[tokio::test]
async fn session_checks_fail_closed_when_redis_is_gone() {
    let mut server = common::PrivateRedis::start().await;
    let s = RedisStore::connect(&common::config(&server.url, "closed:"))
        .await
        .unwrap();
    let sessions = SessionStore::new(s, Duration::from_secs(900));
    let live = sessions
        .create("user-fake", serde_json::json!({}))
        .await
        .unwrap();
    server.stop();
    assert_eq!(
        sessions.validate(&live.id).await.unwrap(),
        None,
        "no session without Redis"
    );
    assert!(
        sessions.is_revoked("jti-any").await.unwrap(),
        "every token revoked without Redis"
    );
}

#[tokio::test]
async fn generations_are_cached_unless_they_hold_phi() {
    let s = common::store().await;
    let cache = GenerationCache::new(s.clone(), Duration::from_secs(3600));
    let params = serde_json::json!({"temperature": 0.2, "max_tokens": 256});
    let reordered: serde_json::Value =
        serde_json::from_str(r#"{"max_tokens": 256, "temperature": 0.2}"#).unwrap();
    let key = GenerationKey {
        model: "fake-llm",
        prompt: "What is box breathing?",
        params: &params,
    };
    assert_eq!(cache.get(&key).await.unwrap(), None);
    assert!(cache
        .put(&key, "Breathe in for four counts.", Sensitivity::Public)
        .await
        .unwrap());
    let same = GenerationKey {
        params: &reordered,
        ..key
    };
    assert_eq!(
        cache.get(&same).await.unwrap().as_deref(),
        Some("Breathe in for four counts.")
    );
    let personal = GenerationKey {
        prompt: "fake patient history ...",
        ..key
    };
    assert!(!cache
        .put(&personal, "fake answer about the patient", Sensitivity::Phi)
        .await
        .unwrap());
    assert_eq!(
        cache.get(&personal).await.unwrap(),
        None,
        "PHI responses are not cached"
    );
    common::cleanup(&s).await;
}

#[tokio::test]
async fn counters_merge_buckets_over_a_window() {
    let s = common::store().await;
    let counters = Counters::new(
        s.clone(),
        Duration::from_secs(60),
        Duration::from_secs(7200),
    )
    .unwrap();
    let now = Utc.timestamp_opt(1_760_000_000 / 60 * 60 + 30, 0).unwrap();
    let minutes_ago = |m: i64| now - chrono::Duration::minutes(m);
    for (m, by) in [(0, 3), (1, 4), (4, 5), (6, 100), (70, 1000)] {
        counters.incr("messages", by, minutes_ago(m)).await.unwrap();
    }
    assert_eq!(
        counters
            .sum("messages", Duration::from_secs(300), now)
            .await
            .unwrap(),
        12
    );
    assert_eq!(
        counters
            .sum("messages", Duration::from_secs(3600), now)
            .await
            .unwrap(),
        112
    );

    for (m, user) in [(0, "u1"), (1, "u2"), (2, "u1"), (3, "u3"), (30, "u4")] {
        counters
            .add_unique("active-users", user, minutes_ago(m))
            .await
            .unwrap();
    }
    assert_eq!(
        counters
            .count_unique("active-users", Duration::from_secs(300), now)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        counters
            .count_unique("active-users", Duration::from_secs(3600), now)
            .await
            .unwrap(),
        4
    );

    for (m, topic, score) in [
        (0, "sleep", 2.0),
        (1, "anxiety", 5.0),
        (2, "sleep", 4.0),
        (50, "grief", 9.0),
    ] {
        counters
            .add_score("topics", topic, score, minutes_ago(m))
            .await
            .unwrap();
    }
    let top = counters
        .top("topics", 2, Duration::from_secs(300), now)
        .await
        .unwrap();
    assert_eq!(
        top,
        vec![("sleep".to_owned(), 6.0), ("anxiety".to_owned(), 5.0)]
    );
    let top = counters
        .top("topics", 1, Duration::from_secs(3600), now)
        .await
        .unwrap();
    assert_eq!(top, vec![("grief".to_owned(), 9.0)]);
    assert!(Counters::new(s.clone(), Duration::from_secs(60), Duration::from_secs(30)).is_err());
    common::cleanup(&s).await;
}

/// A write whose request reached Redis but whose answer was cut off is reported as possibly
/// applied, and it was; one refused before it was sent is not.
#[tokio::test]
async fn a_revocation_whose_answer_is_lost_is_reported_as_possibly_applied() {
    use udl_testkit::toxiproxy::Proxy;
    let direct = common::store().await;
    let proxy = Proxy::to(servers_address(&udl_testkit::servers::redis_url()));
    let prefix = direct.key("");
    let mut config = common::config(&format!("redis://{}/", proxy.listen()), &prefix);
    config.resilience.timeout = Duration::from_secs(30);
    let through = RedisStore::connect(&config).await.unwrap();
    let sessions = SessionStore::new(through, Duration::from_secs(900));
    let exp = Utc::now() + chrono::Duration::hours(1);
    sessions.revoke_token("fake-jti-warm", exp).await.unwrap();

    proxy.add_latency(3_000);
    let revoking = {
        let sessions = sessions.clone();
        tokio::spawn(async move { sessions.revoke_token("fake-jti-cut", exp).await })
    };
    let direct_sessions = SessionStore::new(direct.clone(), Duration::from_secs(900));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !direct_sessions.is_revoked("fake-jti-cut").await.unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the SET never reached Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.set_enabled(false);
    let err = revoking.await.unwrap().unwrap_err();
    assert!(err.outcome_unknown(), "{err}");

    proxy.remove_latency();
    let refused = sessions
        .revoke_token("fake-jti-refused", exp)
        .await
        .unwrap_err();
    assert!(!refused.outcome_unknown(), "{refused}");
    proxy.set_enabled(true);
    assert!(!direct_sessions
        .is_revoked("fake-jti-refused")
        .await
        .unwrap());
    common::cleanup(&direct).await;
}

/// `host:port` of a `redis://host:port/` URL.
fn servers_address(url: &str) -> &str {
    url.trim_start_matches("redis://").trim_end_matches('/')
}
