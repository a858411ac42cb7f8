//! Redis as a [`Backend`]: health only (it holds structures, not entities, and needs no
//! migrations).

use std::any::Any;
use std::time::Duration;

use async_trait::async_trait;
use udl_core::{Backend, Probe, Result, StoreKind};

use crate::store::RedisStore;

#[async_trait]
impl Backend for RedisStore {
    fn kind(&self) -> StoreKind {
        StoreKind::REDIS
    }

    async fn probe(&self, timeout: Duration) -> Result<Probe> {
        Ok(Probe {
            latency: self.health(timeout).await?,
            pool: None,
            detail: None,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
