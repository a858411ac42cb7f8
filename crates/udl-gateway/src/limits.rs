//! The gateway's own protection: at most `max_in_flight` requests at once (beyond it, 503 with
//! `Retry-After` rather than a queue that grows until memory runs out) and `request_timeout`
//! per request (504).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use udl::config::GatewayConfig;

use crate::problem::Problem;

/// How long a caller refused for load is told to wait.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// The limits, shared by every request.
#[derive(Clone)]
pub struct Limits {
    in_flight: Arc<Semaphore>,
    timeout: Duration,
}

impl Limits {
    /// The limits `config` sets.
    pub fn new(config: &GatewayConfig) -> Self {
        Limits {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            timeout: config.request_timeout,
        }
    }
}

/// Admits the request within the limits.
pub async fn guard(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let Ok(_permit) = limits.in_flight.try_acquire() else {
        return Problem::busy("udl is at its concurrency limit; retry shortly", BUSY_RETRY)
            .into_response();
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the request did not finish within gateway.request_timeout",
        )
        .into_response(),
    }
}
