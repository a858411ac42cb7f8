//! Listens for invalidations published by any process and evicts them from this process's
//! L1. Reconnects with a growing pause while Redis is away; L1's TTL bounds how stale an
//! entry can get while no message can arrive.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;
use udl_redis::RedisStore;

use crate::l1::L1;

/// Message meaning "every cached record of this entity".
pub const WHOLE_ENTITY: &str = "*";

/// Subscribes to `channel` now, then evicts each announced key from `l1` until `alive` is
/// dropped. Returns once the first subscription is in place, so writes made after
/// construction are never missed.
pub async fn start(
    redis: RedisStore,
    channel: String,
    l1: L1,
    seen: Arc<watch::Sender<u64>>,
    alive: Weak<()>,
) -> udl_core::Result<()> {
    let mut pubsub = redis.pubsub().await?;
    pubsub
        .subscribe(&channel)
        .await
        .map_err(|e| udl_redis::classify(&e, "subscribe"))?;
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        loop {
            {
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    if alive.upgrade().is_none() {
                        return;
                    }
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    evict(&l1, &payload).await;
                    seen.send_modify(|n| *n += 1);
                }
            }
            // The subscription ended: Redis went away. Retry until it is back or we are gone.
            loop {
                if alive.upgrade().is_none() {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                if let Ok(mut fresh) = redis.pubsub().await {
                    if fresh.subscribe(&channel).await.is_ok() {
                        pubsub = fresh;
                        pause = Duration::from_millis(100);
                        // Anything may have changed while we were deaf.
                        l1.invalidate_all();
                        break;
                    }
                }
            }
        }
    });
    Ok(())
}

async fn evict(l1: &L1, payload: &str) {
    match payload.split_once('\u{0}') {
        Some((entity, WHOLE_ENTITY)) => {
            let prefix = format!("{entity}\u{0}");
            let _ = l1.invalidate_entries_if(move |key, _| key.starts_with(&prefix));
        }
        _ => l1.invalidate(payload).await,
    }
}
