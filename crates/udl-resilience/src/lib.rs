//! Resilience policies shared by every store: exponential backoff with full jitter, a retry
//! budget so retries cannot multiply an outage, and a circuit breaker per store. Each takes an
//! injectable [`Clock`], so their tests never sleep. Only errors classified temporary count as
//! failures; a refused or invalid request says nothing about the store's health.

mod backoff;
mod breaker;
mod budget;
mod clock;
mod landed;
mod layer;

pub use backoff::Backoff;
pub use breaker::{Admission, BreakerConfig, BreakerState, BreakerTransitions, CircuitBreaker};
pub use budget::RetryBudget;
pub use clock::{Clock, ManualClock, SystemClock};
pub use layer::{ResilienceConfig, ResilientStore};
