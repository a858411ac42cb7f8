//! Rate limiting with GCRA (generic cell rate algorithm), decided atomically in Redis by a
//! server-side script using the server's clock, so concurrent callers and processes can
//! never admit more than the limit.

use std::time::Duration;

use redis::Script;
use udl_core::Result;

use crate::error::classify;
use crate::store::RedisStore;

/// `limit` requests per `period`, all of which may come at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests admitted per period.
    pub limit: u32,
    /// The period.
    pub period: Duration,
}

/// What to do when Redis cannot be asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOutage {
    /// Admit the request (the default for rate limits: an outage should not lock users out).
    Allow,
    /// Refuse the request.
    Deny,
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// When refused, how long until a request would be admitted.
    pub retry_after: Duration,
    /// Redis could not be asked; the outage policy decided.
    pub degraded: bool,
}

/// GCRA as a Lua function: the theoretical arrival time (TAT) per key, in milliseconds of
/// server time. `gcra(key, interval, burst)` admits and returns -1, or returns how many
/// milliseconds until a request would be admitted. Shared by every script that limits.
macro_rules! gcra_function {
    () => {
        r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local function gcra(key, interval, burst)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then return allow_at - now end
  redis.call('SET', key, new_tat, 'PX', math.max(1, new_tat - now))
  return -1
end
"
    };
}
pub(crate) use gcra_function;

/// The script: KEYS[1] the subject's key, ARGV[1] the interval in ms, ARGV[2] the burst;
/// `{1, 0}` when admitted, `{0, ms until admitted}` otherwise.
pub const GCRA_SCRIPT: &str = concat!(
    gcra_function!(),
    r"
local wait = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait >= 0 then return {0, wait} end
return {1, 0}
"
);

/// Milliseconds between two admitted requests under `limit` (at least 1).
pub(crate) fn interval_ms(limit: RateLimit) -> u64 {
    (limit.period.as_millis() as u64 / u64::from(limit.limit.max(1))).max(1)
}

/// The Redis key of `subject`'s limit.
pub(crate) fn limit_key(store: &RedisStore, subject: &str) -> String {
    store.key(&format!("rl:{subject}"))
}

/// A rate limiter over Redis.
#[derive(Clone)]
pub struct RateLimiter {
    store: RedisStore,
    script: Script,
    on_outage: OnOutage,
}

impl RateLimiter {
    /// A limiter that admits requests when Redis is down.
    pub fn new(store: RedisStore) -> Self {
        RateLimiter {
            store,
            script: Script::new(GCRA_SCRIPT),
            on_outage: OnOutage::Allow,
        }
    }

    /// The same limiter with another outage policy.
    pub fn on_outage(mut self, policy: OnOutage) -> Self {
        self.on_outage = policy;
        self
    }

    /// Decides one request for `subject` (e.g. a user or API key id, hashed by the caller if
    /// it identifies a patient) under `limit`.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "rate_limit.check")
    )]
    pub async fn check(&self, subject: &str, limit: RateLimit) -> Result<Decision> {
        self.store
            .meter()
            .measure("rate_limit.check", async move {
            if limit.limit == 0 || limit.period.is_zero() {
                return Err(udl_core::Error::invalid(
                    "rate limit needs a positive limit and period",
                ));
            }
            let interval_ms = interval_ms(limit);
            let key = limit_key(&self.store, subject);
            let mut conn = self.store.connection();
            let answer: std::result::Result<(i64, i64), _> = self
                .script
                .key(key)
                .arg(interval_ms)
                .arg(limit.limit)
                .invoke_async(&mut conn)
                .await;
            match answer {
                Ok((allowed, retry_ms)) => Ok(Decision {
                    allowed: allowed == 1,
                    retry_after: Duration::from_millis(retry_ms.max(0) as u64),
                    degraded: false,
                }),
                Err(e) => {
                    let error = classify(&e, "rate limit");
                    if !error.is_temporary() {
                        return Err(error);
                    }
                    tracing::warn!(policy = ?self.on_outage, error = %error, "rate limiter cannot reach Redis");
                    Ok(Decision {
                        allowed: self.on_outage == OnOutage::Allow,
                        retry_after: Duration::ZERO,
                        degraded: true,
                    })
                }
            }
            })
            .await
    }
}
