//! Keeps the tiered cache of MongoDB entities true to writes made around it (another process,
//! a migration, `mongosh`): one change feed per cached entity evicts each changed id from L1,
//! L2 and the cached query results of every process, within the feed's lag. A feed that fails
//! opens again from where it stopped; when it cannot, everything cached of the entity is
//! forgotten, since changes may have been missed. Entities known at connect are followed from
//! then; one first reached later is followed from its first repository on, and what was
//! cached of it before its feed opened is forgotten once it has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use udl_cache::CachedStore;
use udl_core::{EntityMeta, ErrorKind};
use udl_mongo::{MongoStore, ResumePoint};

/// Longest pause between two attempts to open a feed.
const MOST_PAUSE: Duration = Duration::from_secs(5);

/// The feeds being followed, by entity.
#[derive(Default)]
pub(crate) struct Followers {
    running: Mutex<HashMap<&'static str, JoinHandle<()>>>,
    /// Set by [`Followers::stop`]: no feed starts after it.
    stopped: std::sync::atomic::AtomicBool,
}

impl Followers {
    /// Follows `entity`'s changes into `cached`, unless already followed. Waits for the first
    /// feed to open, so a write committed after this returns is not missed (when it cannot
    /// open, the retries forget the entity's cached records once one opens); returns at once
    /// on a server without change streams (the cache's TTLs bound staleness there).
    pub async fn follow(
        &self,
        mongo: &MongoStore,
        cached: &Arc<CachedStore>,
        entity: &'static EntityMeta,
    ) {
        if lock(&self.running).contains_key(entity.name) || !mongo.server().change_streams {
            return;
        }
        let first = mongo.changes(entity, None).await;
        let task = tokio::spawn(follow(
            mongo.clone(),
            Arc::clone(cached),
            entity,
            first.ok(),
        ));
        if let Some(earlier) = lock(&self.running).insert(entity.name, task) {
            earlier.abort(); // a concurrent call started one too
        }
    }

    /// Follows `entity` from now on in the background, unless already followed: for an
    /// entity first reached after connect. Its feed opens shortly, and the entity's cached
    /// records are forgotten then (they may predate it).
    pub fn follow_soon(
        &self,
        mongo: &MongoStore,
        cached: &Arc<CachedStore>,
        entity: &'static EntityMeta,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut running = lock(&self.running);
        if running.contains_key(entity.name)
            || !mongo.server().change_streams
            || self.stopped.load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        let task = runtime.spawn(follow(mongo.clone(), Arc::clone(cached), entity, None));
        running.insert(entity.name, task);
    }

    /// Stops every feed.
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        for (_, task) in lock(&self.running).drain() {
            task.abort();
        }
    }
}

async fn follow(
    mongo: MongoStore,
    cached: Arc<CachedStore>,
    entity: &'static EntityMeta,
    mut feed: Option<udl_mongo::ChangeFeed>,
) {
    let mut after: Option<ResumePoint> = None;
    let mut pause = Duration::from_millis(100);
    loop {
        if let Some(mut open) = feed.take() {
            pause = Duration::from_millis(100);
            loop {
                match open.next().await {
                    Ok(Some(change)) => {
                        match &change.id {
                            Some(id) => cached.forget(entity, id).await,
                            None => cached.forget_all(entity).await,
                        }
                        after = Some(change.resume);
                    }
                    Ok(None) => {
                        // The collection went away: start again from whatever comes next.
                        after = None;
                        break;
                    }
                    Err(e) => {
                        // The stream's own point also covers a feed that failed before any
                        // change reached it.
                        after = open.resume_point().or(after);
                        tracing::warn!(entity = entity.name, error = %e, "change feed failed; opening it again");
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MOST_PAUSE);
        match mongo.changes(entity, after.as_ref()).await {
            Ok(open) => {
                // Opened from "now" after a gap (the first open failed, the collection went
                // away): whatever changed meanwhile was not seen.
                if after.is_none() {
                    cached.forget_all(entity).await;
                }
                feed = Some(open);
            }
            Err(e) if e.kind() == ErrorKind::Unsupported => return,
            Err(e) if after.is_some() && !e.is_temporary() => {
                // The point is gone from the oplog: changes were missed.
                tracing::warn!(entity = entity.name, error = %e, "change feed lost its place; forgetting the entity's cached records");
                cached.forget_all(entity).await;
                after = None;
            }
            Err(e) => {
                tracing::warn!(entity = entity.name, error = %e, "change feed could not be opened; trying again");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
