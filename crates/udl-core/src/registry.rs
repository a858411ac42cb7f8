//! The registry: every entity a process uses, with where it lives and how it is classified,
//! so that whatever must know them all (migrations, change capture, the gateway, retention)
//! can walk one list instead of naming each model.

use std::sync::{Arc, RwLock};

use crate::entity::EntityMeta;
use crate::error::{Error, ErrorKind, Result};
use crate::store_kind::StoreKind;

/// The entities of one process. Cloning shares the list.
#[derive(Clone, Default)]
pub struct Registry {
    entities: Arc<RwLock<Vec<&'static EntityMeta>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `entity` after validating its declaration. Registering the same entity again does
    /// nothing; another entity claiming the same table in the same store is a `Config` error.
    pub fn register(&self, entity: &'static EntityMeta) -> Result<()> {
        // Taking a repository registers its entity, so the common case, an entity already
        // known, is answered under the read lock and without validating it again.
        if self.contains(entity) {
            return Ok(());
        }
        entity.validate()?;
        let mut entities = self.entities.write().unwrap_or_else(|p| p.into_inner());
        if entities.iter().any(|known| std::ptr::eq(*known, entity)) {
            return Ok(());
        }
        if let Some(other) = entities
            .iter()
            .find(|known| known.name == entity.name && known.store == entity.store)
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "two entities claim table {} in {}",
                    other.name,
                    entity.store.map_or("the same store", StoreKind::name)
                ),
            ));
        }
        entities.push(entity);
        Ok(())
    }

    /// Whether `entity` is registered.
    pub fn contains(&self, entity: &'static EntityMeta) -> bool {
        self.entities
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|known| std::ptr::eq(*known, entity))
    }

    /// Every registered entity, in registration order.
    pub fn entities(&self) -> Vec<&'static EntityMeta> {
        self.entities
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The registered entity stored as `name` in `store`.
    pub fn find(&self, store: StoreKind, name: &str) -> Option<&'static EntityMeta> {
        self.entities()
            .into_iter()
            .find(|e| e.store == Some(store) && e.name == name)
    }
}
