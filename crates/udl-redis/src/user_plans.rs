//! Each user's current plan: a read model the change relay keeps from PostgreSQL's
//! `subscriptions` (the `user_plans` projection), for the services that gate features on a
//! plan without a database round trip. One hash per user holds the plan, its status and
//! period end, and the id of the change event that last set it; a change applies only when
//! its event id is newer, so a replay or a late batch changes nothing. User ids are hashed in
//! keys.

use redis::{AsyncCommands as _, Script};
use sha2::{Digest as _, Sha256};
use udl_core::Result;

use crate::error::classify;
use crate::store::RedisStore;

/// A user's plan as the read model holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPlan {
    /// The subscription it comes from.
    pub subscription_id: String,
    /// Plan name.
    pub plan: String,
    /// Subscription status (`active`, `cancelled`, ...).
    pub status: String,
    /// End of the current period (RFC 3339).
    pub current_period_end: String,
}

/// One change to apply, from one change event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanChange {
    /// A subscription was created or updated.
    Set {
        /// The change event's id (orders changes).
        event_id: String,
        /// The user it belongs to.
        user_id: String,
        /// The plan as it now is.
        plan: UserPlan,
    },
    /// A subscription was deleted.
    Removed {
        /// The change event's id.
        event_id: String,
        /// The subscription deleted.
        subscription_id: String,
    },
}

/// Sets the hash when the event is newer than what it holds.
const SET_SCRIPT: &str = r"
local seen = redis.call('HGET', KEYS[1], 'event_id')
if seen and seen >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'event_id', ARGV[1], 'subscription_id', ARGV[2], 'plan', ARGV[3],
           'status', ARGV[4], 'current_period_end', ARGV[5])
return 1";

/// Marks the hash removed when the event is newer and it still shows that subscription.
const REMOVE_SCRIPT: &str = r"
local seen = redis.call('HGET', KEYS[1], 'event_id')
if seen and seen >= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'subscription_id') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'event_id', ARGV[1], 'status', 'removed')
return 1";

/// The read model.
#[derive(Clone)]
pub struct UserPlans {
    store: RedisStore,
    set: Script,
    remove: Script,
}

impl UserPlans {
    /// The read model in `store`.
    pub fn new(store: RedisStore) -> Self {
        UserPlans {
            store,
            set: Script::new(SET_SCRIPT),
            remove: Script::new(REMOVE_SCRIPT),
        }
    }

    fn plan_key(&self, user_id: &str) -> String {
        self.store
            .digest_key("plan:", &Sha256::digest(user_id.as_bytes()).into())
    }

    /// Where a subscription's user's plan lives: deletes carry only the subscription's id.
    fn subscription_key(&self, subscription_id: &str) -> String {
        self.store.key(&format!("plan-of-sub:{subscription_id}"))
    }

    /// Applies `changes` in order; idempotent by event id.
    pub async fn apply(&self, changes: &[PlanChange]) -> Result<()> {
        let mut conn = self.store.connection();
        for change in changes {
            match change {
                PlanChange::Set {
                    event_id,
                    user_id,
                    plan,
                } => {
                    let key = self.plan_key(user_id);
                    let _: () = conn
                        .set(self.subscription_key(&plan.subscription_id), &key)
                        .await
                        .map_err(|e| classify(&e, "user_plans.apply"))?;
                    let _: i64 = self
                        .set
                        .key(&key)
                        .arg(event_id)
                        .arg(&plan.subscription_id)
                        .arg(&plan.plan)
                        .arg(&plan.status)
                        .arg(&plan.current_period_end)
                        .invoke_async(&mut conn)
                        .await
                        .map_err(|e| classify(&e, "user_plans.apply"))?;
                }
                PlanChange::Removed {
                    event_id,
                    subscription_id,
                } => {
                    let key: Option<String> = conn
                        .get(self.subscription_key(subscription_id))
                        .await
                        .map_err(|e| classify(&e, "user_plans.apply"))?;
                    let Some(key) = key else { continue };
                    let _: i64 = self
                        .remove
                        .key(&key)
                        .arg(event_id)
                        .arg(subscription_id)
                        .invoke_async(&mut conn)
                        .await
                        .map_err(|e| classify(&e, "user_plans.apply"))?;
                }
            }
        }
        Ok(())
    }

    /// `user_id`'s current plan; `None` when there is none or its subscription was removed.
    pub async fn get(&self, user_id: &str) -> Result<Option<UserPlan>> {
        let mut conn = self.store.connection();
        let fields: std::collections::HashMap<String, String> = conn
            .hgetall(self.plan_key(user_id))
            .await
            .map_err(|e| classify(&e, "user_plans.get"))?;
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        if fields.is_empty() || field("status") == "removed" {
            return Ok(None);
        }
        Ok(Some(UserPlan {
            subscription_id: field("subscription_id"),
            plan: field("plan"),
            status: field("status"),
            current_period_end: field("current_period_end"),
        }))
    }
}
