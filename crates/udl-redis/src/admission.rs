//! Admitting one request of an authenticated caller in a single Redis round trip: the
//! calling service's rate limit, the end user's token not revoked, the end user's rate limit,
//! decided together by one server-side script (the same GCRA as [`crate::RateLimiter`], the
//! same revocation keys as [`crate::SessionStore`]). A gateway does this on every request;
//! three round trips would cost more than the read it guards. On a Redis Cluster, whose
//! scripts cannot span slots, the three checks are made one after the other.

use std::time::Duration;

use redis::Script;
use udl_core::Result;

use crate::error::classify;
use crate::rate_limit::{gcra_function, interval_ms, limit_key, RateLimit, RateLimiter};
use crate::sessions::SessionStore;
use crate::store::RedisStore;

/// The verdict on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Within both limits, token not revoked.
    Admitted,
    /// The service is over its limit; retry after the duration.
    ServiceLimited(Duration),
    /// The token's id is on the revocation list.
    Revoked,
    /// The end user is over their limit; retry after the duration.
    ActorLimited(Duration),
}

/// KEYS: service limit, revoked token, actor limit. ARGV: interval and burst of each limit.
const ADMISSION_SCRIPT: &str = concat!(
    gcra_function!(),
    r"
local wait = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait >= 0 then return {1, wait} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, 0} end
wait = gcra(KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait >= 0 then return {3, wait} end
return {0, 0}
"
);

/// Decides admissions.
#[derive(Clone)]
pub struct Admissions {
    store: RedisStore,
    script: Script,
    limiter: RateLimiter,
    sessions: SessionStore,
}

impl Admissions {
    /// Admissions over `store`, whose revocation list is `sessions`'.
    pub fn new(store: RedisStore, sessions: SessionStore) -> Self {
        Admissions {
            limiter: RateLimiter::new(store.clone()),
            store,
            script: Script::new(ADMISSION_SCRIPT),
            sessions,
        }
    }

    /// One request of `service` (under `service_limit`) for the end user `actor` (under
    /// `actor_limit`) holding token `jti`. Subjects should not identify a patient as they are
    /// (hash them). An unreachable Redis is an error: the caller must refuse (revocation
    /// fails closed).
    pub async fn admit(
        &self,
        service: &str,
        service_limit: RateLimit,
        actor: &str,
        actor_limit: RateLimit,
        jti: &str,
    ) -> Result<Admission> {
        if self.store.connection().is_cluster() {
            return self
                .admit_in_steps(service, service_limit, actor, actor_limit, jti)
                .await;
        }
        self.store
            .meter()
            .measure("admission.check", async move {
                let mut conn = self.store.connection();
                let (code, wait): (i64, i64) = self
                    .script
                    .key(limit_key(&self.store, service))
                    .key(self.sessions.revoked_key(jti))
                    .key(limit_key(&self.store, actor))
                    .arg(interval_ms(service_limit))
                    .arg(service_limit.limit)
                    .arg(interval_ms(actor_limit))
                    .arg(actor_limit.limit)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "admission"))?;
                let wait = Duration::from_millis(wait.max(0) as u64);
                Ok(match code {
                    0 => Admission::Admitted,
                    1 => Admission::ServiceLimited(wait),
                    2 => Admission::Revoked,
                    _ => Admission::ActorLimited(wait),
                })
            })
            .await
    }

    async fn admit_in_steps(
        &self,
        service: &str,
        service_limit: RateLimit,
        actor: &str,
        actor_limit: RateLimit,
        jti: &str,
    ) -> Result<Admission> {
        let decision = self.limiter.check(service, service_limit).await?;
        if !decision.allowed {
            return Ok(Admission::ServiceLimited(decision.retry_after));
        }
        if self.sessions.is_revoked(jti).await? {
            return Ok(Admission::Revoked);
        }
        let decision = self.limiter.check(actor, actor_limit).await?;
        Ok(if decision.allowed {
            Admission::Admitted
        } else {
            Admission::ActorLimited(decision.retry_after)
        })
    }
}
