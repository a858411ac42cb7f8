//! Pool sizing. The pool itself follows demand within `pool.min`–`pool.max`: an acquire that
//! finds no idle connection opens a new one (rather than waiting) while the pool is below
//! `max`, and connections idle for `pool.idle_timeout` are closed down to `min`. The watcher
//! makes that visible: every change of size is logged and counted in
//! `udl_pool_resizes_total`, and the pool gauges are kept current.

use std::sync::Arc;
use std::time::Duration;

use udl_core::StoreKind;
use udl_metrics::{Metrics, PoolFigures};

use crate::PgStore;

impl PgStore {
    /// The pool's current figures.
    pub fn pool_figures(&self) -> PoolFigures {
        let pool = self.pool();
        PoolFigures {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            min: pool.options().get_min_connections(),
            max: pool.options().get_max_connections(),
        }
    }

    /// Samples the pool every `every` until it is closed, logging and counting each resize.
    pub fn watch_pool(
        &self,
        metrics: Arc<Metrics>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        // The first sample now, not whenever the task first runs: a resize in between counts.
        let mut last = store.pool_figures();
        metrics.set_pool(StoreKind::POSTGRES, last);
        tokio::spawn(async move {
            while !store.pool().is_closed() {
                tokio::time::sleep(every).await;
                let now = store.pool_figures();
                if now.open != last.open {
                    let grew = now.open > last.open;
                    tracing::info!(
                        store = "postgres",
                        from = last.open,
                        to = now.open,
                        min = now.min,
                        max = now.max,
                        "connection pool {}",
                        if grew { "grew" } else { "shrank" }
                    );
                    metrics.count_pool_resize(StoreKind::POSTGRES, grew);
                }
                metrics.set_pool(StoreKind::POSTGRES, now);
                last = now;
            }
        })
    }
}
