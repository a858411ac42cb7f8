//! Keys: data keys (what encrypts fields), key-encryption keys (what wraps data keys), and the
//! provider that holds the latter.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom as _, SystemRandom};
use udl_core::{Error, ErrorKind, Result};
use zeroize::Zeroizing;

/// Version of a key; ciphertexts name the version that encrypted them.
pub type KeyVersion = u32;

/// 256 bits of key material, zeroised when dropped, never printed.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| Error::new(ErrorKind::Internal, "the system random source failed"))?;
        Ok(DataKey(bytes))
    }

    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::new(ErrorKind::Config, "a key must be exactly 32 bytes"))?;
        Ok(DataKey(Zeroizing::new(array)))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// This key as an AES-256-GCM key.
    pub(crate) fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, self.0.as_ref()).expect("32 bytes is an AES-256 key"),
        )
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key encrypted by a key-encryption key: safe to store beside the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// Version of the key-encryption key that wrapped it.
    pub kek_version: KeyVersion,
    /// Nonce, ciphertext and tag.
    pub bytes: Vec<u8>,
}

/// Holds key-encryption keys and wraps and unwraps data keys with them. A KMS or Vault transit
/// provider implements this with remote calls; the keys never leave it.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    /// Name for logs and errors (never key material).
    fn name(&self) -> &'static str;

    /// Wraps `key` with the newest key-encryption key.
    async fn wrap(&self, key: &DataKey) -> Result<WrappedKey>;

    /// Unwraps `wrapped` with the key-encryption key it names.
    async fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey>;
}

/// Key-encryption keys from local configuration, for development and tests:
/// `"1:<base64 of 32 bytes>,2:<base64 of 32 bytes>"` (from a file or an environment variable).
/// The highest version wraps new data keys; every version unwraps.
pub struct LocalKeyRing {
    keys: BTreeMap<KeyVersion, DataKey>,
}

fn ring_error(problem: &'static str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("local key ring: {problem} (expected \"1:<base64 of 32 bytes>,2:...\")"),
    )
}

impl LocalKeyRing {
    /// Parses `text`; the message of an error never quotes it.
    pub fn parse(text: &str) -> Result<Self> {
        let mut keys = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (version, key) = entry
                .split_once(':')
                .ok_or_else(|| ring_error("an entry has no version"))?;
            let version: KeyVersion = version
                .trim()
                .parse()
                .map_err(|_| ring_error("a version is not a number"))?;
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(key.trim())
                    .map_err(|_| ring_error("a key is not base64"))?,
            );
            let key =
                DataKey::from_bytes(&bytes).map_err(|_| ring_error("a key is not 32 bytes"))?;
            if keys.insert(version, key).is_some() {
                return Err(ring_error("a version appears twice"));
            }
        }
        if keys.is_empty() {
            return Err(ring_error("no key"));
        }
        Ok(LocalKeyRing { keys })
    }

    /// Reads the ring from the file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("local key ring file cannot be read: {}", e.kind()),
            )
        })?);
        Self::parse(&text)
    }

    fn newest(&self) -> (KeyVersion, &DataKey) {
        let (version, key) = self.keys.iter().next_back().expect("never empty");
        (*version, key)
    }
}

fn wrap_aad(version: KeyVersion) -> [u8; 12] {
    let mut aad = *b"udl-dek-\0\0\0\0";
    aad[8..].copy_from_slice(&version.to_be_bytes());
    aad
}

#[async_trait]
impl KeyProvider for LocalKeyRing {
    fn name(&self) -> &'static str {
        "local key ring"
    }

    async fn wrap(&self, key: &DataKey) -> Result<WrappedKey> {
        let (version, kek) = self.newest();
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::new(ErrorKind::Internal, "the system random source failed"))?;
        let mut sealed = key.bytes().to_vec();
        kek.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(wrap_aad(version)),
                &mut sealed,
            )
            .map_err(|_| Error::new(ErrorKind::Internal, "wrapping a data key failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(WrappedKey {
            kek_version: version,
            bytes,
        })
    }

    async fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey> {
        let unusable = || {
            Error::new(
                ErrorKind::DataCorruption,
                "a wrapped data key does not open with its key-encryption key",
            )
        };
        let kek = self.keys.get(&wrapped.kek_version).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "key-encryption key version {} is not in the local key ring",
                    wrapped.kek_version
                ),
            )
        })?;
        if wrapped.bytes.len() < NONCE_LEN {
            return Err(unusable());
        }
        let (nonce, sealed) = wrapped.bytes.split_at(NONCE_LEN);
        let mut opened = Zeroizing::new(sealed.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unusable())?;
        let plain = kek
            .aead()
            .open_in_place(nonce, Aad::from(wrap_aad(wrapped.kek_version)), &mut opened)
            .map_err(|_| unusable())?;
        DataKey::from_bytes(plain).map_err(|_| unusable())
    }
}

impl fmt::Debug for LocalKeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions: Vec<&KeyVersion> = self.keys.keys().collect();
        f.debug_struct("LocalKeyRing")
            .field("versions", &versions)
            .finish_non_exhaustive()
    }
}
