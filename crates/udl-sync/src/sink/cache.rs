//! Cache invalidation from the WAL: a change to a cached entity, made by any writer (another
//! process, a migration, `psql`), is forgotten from L1, L2 and the cached query results of
//! every udl process (the cache announces it over Redis), within the relay's lag. Writes
//! through the cache already do this; this covers the ones around it.

use std::collections::HashMap;
use std::sync::Arc;

use udl_cache::CachedStore;
use udl_core::{EntityMeta, Sensitivity, Value};

use crate::event::ChangeEvent;

/// Forgets what the cache holds of changed records.
pub struct CacheInvalidation {
    cached: Arc<CachedStore>,
    /// The cached entities, by name.
    entities: HashMap<&'static str, &'static EntityMeta>,
}

impl CacheInvalidation {
    /// Invalidation in `cached` for those of `entities` that declare a cache; `None` when
    /// none does.
    pub fn new(cached: Arc<CachedStore>, entities: &[&'static EntityMeta]) -> Option<Self> {
        let entities: HashMap<_, _> = entities
            .iter()
            .filter(|e| e.cache.is_cached())
            .map(|e| (e.name, *e))
            .collect();
        (!entities.is_empty()).then_some(CacheInvalidation { cached, entities })
    }

    /// Forgets each changed record; one whose id the event does not carry (a sensitive id is
    /// tokenized or left out) takes every cached record of its entity with it.
    pub(crate) async fn write(&self, events: &[&ChangeEvent]) {
        for event in events {
            let Some(entity) = self.entities.get(event.entity) else {
                continue;
            };
            let id_field = entity.id();
            let id = event
                .data
                .get(id_field.name)
                .filter(|_| id_field.sensitivity < Sensitivity::Pii)
                .and_then(|json| Value::from_json(id_field.kind, json).ok());
            match id {
                Some(id) => self.cached.forget(entity, &id).await,
                None => self.cached.forget_all(entity).await,
            }
        }
    }
}
