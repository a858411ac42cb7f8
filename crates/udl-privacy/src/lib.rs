//! udl's privacy primitives: field encryption and blind indexes.
//!
//! Field values are encrypted with AES-256-GCM under a data key; every ciphertext carries the
//! key's version and a fresh random nonce, and is bound (as associated data) to where it
//! belongs — store, table, field, record id — so a ciphertext copied to another row or field
//! does not decrypt. Data keys are kept wrapped by a key-encryption key from a
//! [`KeyProvider`]; [`LocalKeyRing`] is the provider for development and tests, and a KMS or
//! Vault transit provider is one more implementation of the trait. Key bytes are zeroised
//! when dropped and never printed.
//!
//! A [`BlindIndex`] is a keyed HMAC of a normalised value, stored beside the ciphertext so
//! that equality lookups work without decrypting. A [`Masker`] applies the declared mask
//! rules, including the keyed `hash`.

pub mod audit;
mod blind;
mod cipher;
mod encrypted_store;
mod field_keys;
pub mod history;
mod key_store;
mod keys;
mod legacy;
mod mask;
mod plain;
pub mod policy;
mod rotation;
mod sealing;
mod stored_form;
pub mod tokens;

pub use blind::BlindIndex;
pub use cipher::{FieldCipher, FieldPlace};
pub use encrypted_store::EncryptedStore;
pub use field_keys::FieldKeys;
pub use key_store::{load_keys, rotate, KeyPurpose};
pub use keys::{DataKey, KeyProvider, KeyVersion, LocalKeyRing, WrappedKey};
pub use legacy::{count_plaintext, plaintext_columns, seal_plaintext, PlaintextColumn};
pub use mask::Masker;
pub use rotation::{reencrypt, resealer, Reencrypted};
pub use sealing::open_field;
pub use stored_form::{blind_index_name, stored_form};
