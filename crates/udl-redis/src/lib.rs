//! Redis backend of udl: the platform's shared fast state.
//!
//! [`RedisStore`] holds a self-reconnecting multiplexed connection and the key prefix every
//! key udl writes carries. On top of it: the [`EmbeddingCache`], the [`GenerationCache`],
//! [`SessionStore`] (sessions and JWT revocation), [`Counters`] for real-time analytics, and the
//! atomic GCRA [`RateLimiter`], the [`UserPlans`] read model, each with a declared behaviour
//! for when Redis is down.

mod admission;
mod backend;
mod coalesce;
mod config;
mod connection;
mod counters;
mod embedding_cache;
mod error;
mod generation_cache;
mod rate_limit;
mod sessions;
mod store;
mod user_plans;

pub use admission::{Admission, Admissions};
pub use coalesce::CoalescedGet;
pub use config::RedisConfig;
pub use connection::RedisConnection;
pub use counters::Counters;
pub use embedding_cache::EmbeddingCache;
pub use error::classify;
pub use generation_cache::{GenerationCache, GenerationKey};
pub use rate_limit::{Decision, OnOutage, RateLimit, RateLimiter, GCRA_SCRIPT};
pub use sessions::{Session, SessionStore};
pub use store::RedisStore;
pub use user_plans::{PlanChange, UserPlan, UserPlans};
