//! Redis as the platform's fast state: sessions with sliding expiry and logout everywhere, JWT
//! revocation that fails closed, a GCRA rate limit shared by every process, and the embedding
//! cache. Needs `[redis]`.

use std::time::Duration;

use udl::redis::{EmbeddingCache, RateLimit, RateLimiter, SessionStore};
use udl::Result;

#[tokio::main]
async fn main() -> Result<()> {
    let data = udl_examples::connect().await?;
    let redis = data.redis()?;

    let sessions = SessionStore::new(redis.clone(), Duration::from_secs(1800));
    let session = sessions
        .create("user-fake-1", serde_json::json!({"device": "ios"}))
        .await?;
    assert!(sessions.validate(&session.id).await?.is_some()); // None when unknown or expired
    sessions.logout_everywhere("user-fake-1").await?;
    assert!(sessions.validate(&session.id).await?.is_none());
    let expires = chrono::Utc::now() + chrono::Duration::minutes(15);
    sessions.revoke_token("jti-fake-1", expires).await?; // kept until the token's exp
    assert!(sessions.is_revoked("jti-fake-1").await?); // true when Redis is down

    let limiter = RateLimiter::new(redis.clone());
    let per_minute = RateLimit {
        limit: 2,
        period: Duration::from_secs(60),
    };
    let mut allowed = 0;
    for _ in 0..3 {
        let decision = limiter.check("user-fake-1", per_minute).await?;
        if decision.allowed {
            allowed += 1;
        } else {
            println!("429, retry after {:?}", decision.retry_after);
        }
    }
    assert_eq!(allowed, 2);

    let embeddings = EmbeddingCache::new(redis.clone(), Duration::from_secs(7 * 24 * 3600));
    let vector = [0.25_f32, -0.5, 1.0];
    embeddings
        .set_many("fake-embed-3", &[("how do I sleep better", &vector)])
        .await?;
    let cached = embeddings
        .get_many("fake-embed-3", 3, &["how do I sleep better", "unseen"])
        .await?;
    assert_eq!(cached[0].as_deref(), Some(&vector[..]));
    assert!(cached[1].is_none()); // a miss: compute and store it
    Ok(())
}
