//! Blind indexes: a keyed HMAC-SHA-256 of a normalised value, stored beside its ciphertext, so
//! an equality filter can find the record without the value ever being stored in the clear.
//! The table and field are part of the input: one email in two fields gives two unrelated
//! indexes. Only equality can use it; ranges and prefixes cannot.

use ring::hmac;
use udl_core::BlindIndexRule;

use crate::keys::DataKey;

/// `value` as `rule` normalises it before indexing.
fn normalise(rule: BlindIndexRule, value: &str) -> String {
    match rule {
        BlindIndexRule::Exact => value.to_owned(),
        BlindIndexRule::CaseInsensitive => value.trim().to_lowercase(),
        BlindIndexRule::Phone => {
            let trimmed = value.trim();
            let mut out = String::with_capacity(trimmed.len());
            if trimmed.starts_with('+') {
                out.push('+');
            }
            out.extend(trimmed.chars().filter(char::is_ascii_digit));
            out
        }
    }
}

/// The blind-index key (kept apart from the encryption keys).
pub struct BlindIndex {
    key: hmac::Key,
}

impl BlindIndex {
    /// An index keyed by `key`.
    pub fn new(key: &DataKey) -> Self {
        BlindIndex {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.bytes()),
        }
    }

    /// The index of `value` in `table.field`, after normalising it by `rule`.
    pub fn of(&self, table: &str, field: &str, value: &str, rule: BlindIndexRule) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        for part in [table, field] {
            context.update(&(part.len() as u32).to_be_bytes());
            context.update(part.as_bytes());
        }
        context.update(normalise(rule, value).as_bytes());
        let tag = context.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex(<key redacted>)")
    }
}
