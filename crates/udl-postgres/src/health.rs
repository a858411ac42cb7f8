//! Health of the PostgreSQL store: a real round-trip plus pool figures.

use std::time::{Duration, Instant};

use udl_core::{Error, ErrorKind, Result, StoreKind};

use crate::error::classify;
use crate::store::PgStore;

/// Result of a health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgHealth {
    /// Round-trip time of `SELECT 1`.
    pub latency: Duration,
    /// Connections open.
    pub pool_size: u32,
    /// Connections open and idle.
    pub idle: usize,
}

impl PgStore {
    /// Runs `SELECT 1` within `timeout`.
    pub async fn health(&self, timeout: Duration) -> Result<PgHealth> {
        let started = Instant::now();
        let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(self.pool());
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(1)) => Ok(PgHealth {
                latency: started.elapsed(),
                pool_size: self.pool().size(),
                idle: self.pool().num_idle(),
            }),
            Ok(Ok(_)) => Err(
                Error::new(ErrorKind::Internal, "SELECT 1 returned another value")
                    .with_store(StoreKind::POSTGRES)
                    .with_operation("health"),
            ),
            Ok(Err(e)) => Err(classify(&e, "health")),
            Err(_) => Err(Error::new(ErrorKind::Timeout, "health check timed out")
                .with_store(StoreKind::POSTGRES)
                .with_operation("health")),
        }
    }
}
