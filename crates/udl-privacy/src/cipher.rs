//! Field encryption: AES-256-GCM with a fresh random nonce per value, the key's version in the
//! ciphertext, and the value's place bound as associated data.
//!
//! Layout: `format (1) | key version (4, big-endian) | nonce (12) | ciphertext | tag (16)`.

use std::collections::BTreeMap;

use ring::aead::{Aad, LessSafeKey, Nonce, NONCE_LEN};
use ring::rand::{SecureRandom as _, SystemRandom};
use udl_core::{Error, ErrorKind, Result};

use crate::keys::{DataKey, KeyVersion};

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + NONCE_LEN;
const TAG: usize = 16;

/// Where a value lives. Its ciphertext opens only here: copied to another store, table,
/// field or record, it fails to decrypt.
#[derive(Clone, Copy, Debug)]
pub struct FieldPlace<'a> {
    /// Store name (`postgres`, `mongo`, ...).
    pub store: &'a str,
    /// Table or collection.
    pub table: &'a str,
    /// Field name.
    pub field: &'a str,
    /// The record's id, as bytes.
    pub record_id: &'a [u8],
}

impl FieldPlace<'_> {
    /// Associated data: the header, then each part length-prefixed (so no two places collide).
    fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        let parts = [
            self.store.as_bytes(),
            self.table.as_bytes(),
            self.field.as_bytes(),
            self.record_id,
        ];
        let mut aad =
            Vec::with_capacity(header.len() + 16 + parts.iter().map(|p| p.len()).sum::<usize>());
        aad.extend_from_slice(header);
        for part in parts {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }
}

/// Encrypts with the newest data key; decrypts with whichever version a value names.
pub struct FieldCipher {
    keys: BTreeMap<KeyVersion, LessSafeKey>,
    newest: KeyVersion,
    random: SystemRandom,
}

fn unopenable() -> Error {
    Error::new(
        ErrorKind::DataCorruption,
        "an encrypted field does not open: altered, moved from another record or field, or not udl's",
    )
}

impl FieldCipher {
    /// A cipher over `keys` (version, data key); the highest version encrypts.
    pub fn new(keys: impl IntoIterator<Item = (KeyVersion, DataKey)>) -> Result<Self> {
        let keys: BTreeMap<KeyVersion, LessSafeKey> =
            keys.into_iter().map(|(v, k)| (v, k.aead())).collect();
        let newest = *keys
            .keys()
            .next_back()
            .ok_or_else(|| Error::new(ErrorKind::Config, "field encryption needs a data key"))?;
        Ok(FieldCipher {
            keys,
            newest,
            random: SystemRandom::new(),
        })
    }

    /// The version new values are encrypted with.
    pub fn current_version(&self) -> KeyVersion {
        self.newest
    }

    /// The key version `ciphertext` was made with, if it is one of udl's.
    pub fn version_of(ciphertext: &[u8]) -> Option<KeyVersion> {
        if ciphertext.len() < HEADER + TAG || ciphertext[0] != FORMAT {
            return None;
        }
        Some(KeyVersion::from_be_bytes(ciphertext[1..5].try_into().ok()?))
    }

    /// Encrypts `plaintext` for `place` with the newest key.
    pub fn encrypt(&self, place: &FieldPlace<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG);
        out.push(FORMAT);
        out.extend_from_slice(&self.newest.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| Error::new(ErrorKind::Internal, "the system random source failed"))?;
        out.extend_from_slice(&nonce);
        let aad = place.associated_data(&out[..HEADER]);
        out.extend_from_slice(plaintext);
        let key = &self.keys[&self.newest];
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut out[HEADER..],
            )
            .map_err(|_| Error::new(ErrorKind::Internal, "encryption failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `ciphertext` found at `place`.
    pub fn decrypt(&self, place: &FieldPlace<'_>, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let version = Self::version_of(ciphertext).ok_or_else(unopenable)?;
        let key = self.keys.get(&version).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "data key version {version} is not loaded; it is needed to decrypt this field"
                ),
            )
        })?;
        let (header, sealed) = ciphertext.split_at(HEADER);
        let nonce = Nonce::try_assume_unique_for_key(&header[5..]).map_err(|_| unopenable())?;
        let aad = place.associated_data(header);
        let mut opened = sealed.to_vec();
        let len = key
            .open_in_place(nonce, Aad::from(&aad), &mut opened)
            .map_err(|_| unopenable())?
            .len();
        opened.truncate(len);
        Ok(opened)
    }
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldCipher")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
