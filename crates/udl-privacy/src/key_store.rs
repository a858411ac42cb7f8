//! Data keys kept in PostgreSQL (`udl_data_keys`), only ever wrapped: loading unwraps every
//! version through the [`KeyProvider`]; rotating adds a new version, which then encrypts new
//! values while the older ones keep decrypting.

use udl_core::{Error, ErrorKind, Result, StoreKind};
use udl_postgres::PgStore;

use crate::keys::{DataKey, KeyProvider, KeyVersion, WrappedKey};

/// What a data key is for; each purpose has its own versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Field encryption.
    Encryption,
    /// Blind indexes.
    BlindIndex,
    /// Keyed mask hashes.
    Masking,
}

impl KeyPurpose {
    fn name(self) -> &'static str {
        match self {
            KeyPurpose::Encryption => "encryption",
            KeyPurpose::BlindIndex => "blind_index",
            KeyPurpose::Masking => "masking",
        }
    }
}

fn store_error(e: &sqlx::Error, operation: &'static str) -> Error {
    udl_postgres::classify(e, operation)
}

/// The wrapped data keys of one purpose, oldest first.
async fn stored(pg: &PgStore, purpose: KeyPurpose) -> Result<Vec<(i32, i32, Vec<u8>)>> {
    sqlx::query_as(
        "SELECT version, kek_version, wrapped FROM udl_data_keys WHERE purpose = $1 ORDER BY version",
    )
    .bind(purpose.name())
    .fetch_all(pg.pool())
    .await
    .map_err(|e| store_error(&e, "load data keys"))
}

/// The data keys of one purpose, unwrapped, oldest first; a first key is made when none exists.
pub async fn load_keys(
    pg: &PgStore,
    provider: &dyn KeyProvider,
    purpose: KeyPurpose,
) -> Result<Vec<(KeyVersion, DataKey)>> {
    let mut rows = stored(pg, purpose).await?;
    if rows.is_empty() {
        rotate(pg, provider, purpose).await?;
        rows = stored(pg, purpose).await?;
    }
    let mut keys = Vec::with_capacity(rows.len());
    for (version, kek_version, bytes) in rows {
        let wrapped = WrappedKey {
            kek_version: kek_version as KeyVersion,
            bytes,
        };
        keys.push((version as KeyVersion, provider.unwrap(&wrapped).await?));
    }
    Ok(keys)
}

/// Adds a new data key version for `purpose` (wrapped by the provider's newest key); returns it.
/// Two processes rotating at once get distinct versions: the insert picks the next free one.
pub async fn rotate(
    pg: &PgStore,
    provider: &dyn KeyProvider,
    purpose: KeyPurpose,
) -> Result<KeyVersion> {
    let wrapped = provider.wrap(&DataKey::generate()?).await?;
    let kek_version = i32::try_from(wrapped.kek_version).map_err(|_| {
        Error::new(ErrorKind::Config, "key-encryption key version is too large")
            .with_store(StoreKind::POSTGRES)
    })?;
    for _ in 0..5 {
        let inserted: Option<i32> = sqlx::query_scalar(
            "INSERT INTO udl_data_keys (purpose, version, kek_version, wrapped)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM udl_data_keys WHERE purpose = $1
             ON CONFLICT (purpose, version) DO NOTHING
             RETURNING version",
        )
        .bind(purpose.name())
        .bind(kek_version)
        .bind(&wrapped.bytes)
        .fetch_optional(pg.pool())
        .await
        .map_err(|e| store_error(&e, "rotate data key"))?;
        if let Some(version) = inserted {
            tracing::info!(purpose = purpose.name(), version, "data key version added");
            return Ok(version as KeyVersion);
        }
    }
    Err(Error::new(
        ErrorKind::Conflict,
        "data key rotation kept colliding with another rotation; try again",
    )
    .with_store(StoreKind::POSTGRES))
}
