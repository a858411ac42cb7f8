//! The analytics spool of a data layer: opened when `scylla.spool_dir` is set, replayed in
//! the background while anything waits in it, and given a last replay at shutdown.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use udl_core::Result;
use udl_metrics::Metrics;
use udl_scylla::{ScyllaStore, SpooledAnalytics};

/// How often a non-empty spool is offered to ScyllaDB again.
const REPLAY_EVERY: Duration = Duration::from_secs(1);

/// Writes per analytics call outstanding at once.
const IN_FLIGHT: usize = 32;

/// The spool and its background replayer.
pub(crate) struct Spool {
    pub analytics: Arc<SpooledAnalytics>,
    replayer: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Spool {
    /// Opens the spool in `dir` and starts replaying it.
    pub async fn start(store: &ScyllaStore, dir: &Path, metrics: Arc<Metrics>) -> Result<Self> {
        let analytics = Arc::new(
            SpooledAnalytics::new(store, dir, IN_FLIGHT)
                .await?
                .with_metrics(metrics),
        );
        let (stop, stopped) = oneshot::channel();
        let replaying = Arc::clone(&analytics);
        let task = tokio::spawn(async move { replaying.replay_until(REPLAY_EVERY, stopped).await });
        Ok(Spool {
            analytics,
            replayer: Mutex::new(Some((stop, task))),
        })
    }

    /// Stops the replayer and replays once more within `grace`; the writes still spooled
    /// (they stay on disk for the next start).
    pub async fn stop_and_flush(&self, grace: Duration) -> u64 {
        let replayer = self
            .replayer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, task)) = replayer {
            let _ = stop.send(());
            let _ = task.await;
        }
        if self.analytics.depth() > 0 {
            match tokio::time::timeout(grace, self.analytics.replay()).await {
                Ok(Ok(sent)) => tracing::info!(sent, "spool flushed at shutdown"),
                Ok(Err(e)) => tracing::warn!(error = %e, "spool kept on disk for the next start"),
                Err(_) => tracing::warn!("spool flush ran out of time; the rest stays on disk"),
            }
        }
        self.analytics.depth()
    }
}
