//! Masking with a key: the `hash` rule shows a short keyed hash, stable for correlating log
//! lines about one value but unreadable (a plain hash of a phone number or MRN would be
//! reversed by trying them all). The other rules need no key.

use ring::hmac;
use udl_core::{mask_value, MaskRule, Value};

use crate::keys::DataKey;

/// Applies mask rules, `hash` included.
pub struct Masker {
    key: hmac::Key,
}

impl Masker {
    /// A masker whose hashes are keyed by `key`.
    pub fn new(key: &DataKey) -> Self {
        Masker {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.bytes()),
        }
    }

    /// `value` as `rule` shows it.
    pub fn mask(&self, rule: MaskRule, value: &Value) -> String {
        match (rule, value) {
            (MaskRule::Hash, Value::Null) => "null".to_owned(),
            (MaskRule::Hash, Value::Text(text)) => self.hash(text.as_bytes()),
            (MaskRule::Hash, other) => self.hash(other.to_json().to_string().as_bytes()),
            _ => mask_value(rule, value),
        }
    }

    fn hash(&self, bytes: &[u8]) -> String {
        let tag = hmac::sign(&self.key, bytes);
        let hex: String = tag.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("#{hex}")
    }
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Masker(<key redacted>)")
    }
}
