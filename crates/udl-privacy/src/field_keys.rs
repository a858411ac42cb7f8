//! The field keys a process works with: the field cipher's data keys (every version, the
//! newest encrypting) and the blind-index key. Loaded from PostgreSQL through a
//! [`KeyProvider`], they are loaded again when a value names a newer version than any loaded
//! and periodically, so a rotation made elsewhere reaches every process.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use udl_core::{Error, ErrorKind, Result};
use udl_postgres::PgStore;

use crate::blind::BlindIndex;
use crate::cipher::FieldCipher;
use crate::key_store::{load_keys, KeyPurpose};
use crate::keys::KeyProvider;

/// The keys the privacy layer works with: one for field encryption, one for blind indexes.
/// Keys loaded from PostgreSQL can be loaded again, so a rotation made by another process
/// (`udl keys rotate`) reaches this one: [`FieldKeys::reload`].
pub struct FieldKeys {
    cipher: RwLock<Arc<FieldCipher>>,
    /// Keys blind indexes.
    pub index: BlindIndex,
    source: Option<KeySource>,
    /// When the keys were last loaded again, so a value naming a version that does not exist
    /// cannot make every read query the key table.
    reloaded: Mutex<Option<Instant>>,
}

/// Where reloadable keys come from.
struct KeySource {
    pg: PgStore,
    provider: Arc<dyn KeyProvider>,
}

/// Least time between two reloads asked for by values under unknown versions.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

impl FieldKeys {
    /// The field-encryption and blind-index keys kept in `pg`, unwrapped by `provider`
    /// (first versions are made when none exist); [`FieldKeys::reload`] loads them again from
    /// there. The first blind-index version keys the indexes: a blind index cannot be rotated
    /// without recomputing every stored index.
    pub async fn load(pg: &PgStore, provider: Arc<dyn KeyProvider>) -> Result<Self> {
        let cipher =
            FieldCipher::new(load_keys(pg, provider.as_ref(), KeyPurpose::Encryption).await?)?;
        let index_keys = load_keys(pg, provider.as_ref(), KeyPurpose::BlindIndex).await?;
        let (_, index_key) = index_keys
            .first()
            .ok_or_else(|| Error::new(ErrorKind::Config, "no blind-index key"))?;
        let index = BlindIndex::new(index_key);
        let source = KeySource {
            pg: pg.clone(),
            provider,
        };
        Ok(FieldKeys::with_source(cipher, index, Some(source)))
    }

    /// Fixed keys: `cipher` for field values, `index` for blind indexes.
    pub fn new(cipher: FieldCipher, index: BlindIndex) -> Self {
        Self::with_source(cipher, index, None)
    }

    fn with_source(cipher: FieldCipher, index: BlindIndex, source: Option<KeySource>) -> Self {
        FieldKeys {
            cipher: RwLock::new(Arc::new(cipher)),
            index,
            source,
            reloaded: Mutex::new(None),
        }
    }

    /// The field cipher as last loaded.
    pub fn cipher(&self) -> Arc<FieldCipher> {
        Arc::clone(&self.cipher.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Loads the field-encryption key versions again (keys loaded from PostgreSQL only), so
    /// new values use a version another process added and values it sealed open here. Returns
    /// whether the newest version changed.
    pub async fn reload(&self) -> Result<bool> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let keys = load_keys(&source.pg, source.provider.as_ref(), KeyPurpose::Encryption).await?;
        let cipher = FieldCipher::new(keys)?;
        let before = self.cipher().current_version();
        let after = cipher.current_version();
        *self.cipher.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cipher);
        if after != before {
            tracing::info!(version = after, "field-encryption key version loaded");
        }
        Ok(after != before)
    }

    /// [`FieldKeys::reload`], unless the keys were loaded again less than a second ago (a
    /// value naming a version that does not exist must not make every read query the key
    /// table); whether they were loaded again.
    pub(crate) async fn reload_throttled(&self) -> Result<bool> {
        if self.source.is_none() {
            return Ok(false);
        }
        {
            let mut last = self.reloaded.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < RELOAD_AT_MOST_EVERY) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        self.reload().await?;
        Ok(true)
    }
}

impl std::fmt::Debug for FieldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldKeys")
            .field("cipher", &self.cipher())
            .field("reloadable", &self.source.is_some())
            .finish_non_exhaustive()
    }
}
