//! Redis backend of udl: the platform's shared fast state.
//!
//! [`RedisStore`] holds a self-reconnecting multiplexed connection and the key prefix every
//! key udl writes carries. On top of it: the [`EmbeddingCache`] and the atomic GCRA
//! [`RateLimiter`] with a declared policy for when Redis is down.

mod embedding_cache;
mod error;
mod rate_limit;
mod store;

pub use embedding_cache::EmbeddingCache;
pub use error::classify;
pub use rate_limit::{Decision, OnOutage, RateLimit, RateLimiter};
pub use store::RedisStore;
