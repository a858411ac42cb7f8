//! LLM generation cache: the response to (model, prompt, generation parameters).
//!
//! A response whose classification is PHI is not cached at all until field encryption is
//! available (the privacy layer); PII is treated the same way. Keys are hashes.

use std::time::Duration;

use redis::AsyncCommands as _;
use sha2::{Digest, Sha256};
use udl_core::{Result, Sensitivity};

use crate::error::classify;
use crate::store::RedisStore;

/// What identifies one generation.
#[derive(Clone, Copy, Debug)]
pub struct GenerationKey<'a> {
    /// Model name and version.
    pub model: &'a str,
    /// The full prompt.
    pub prompt: &'a str,
    /// Generation parameters (temperature, max tokens, ...); key order does not matter.
    pub params: &'a serde_json::Value,
}

/// Feeds `v` to the hasher with object keys sorted, so equal parameters hash equally whatever
/// their order (serde_json may keep insertion order when another crate enables it).
fn canonical(v: &serde_json::Value, h: &mut Sha256) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            h.update(b"{");
            for k in keys {
                h.update(serde_json::Value::String(k.clone()).to_string().as_bytes());
                h.update(b":");
                canonical(&map[k], h);
                h.update(b",");
            }
            h.update(b"}");
        }
        serde_json::Value::Array(items) => {
            h.update(b"[");
            for item in items {
                canonical(item, h);
                h.update(b",");
            }
            h.update(b"]");
        }
        scalar => h.update(scalar.to_string().as_bytes()),
    }
}

/// Caches generated responses with a TTL.
#[derive(Clone)]
pub struct GenerationCache {
    store: RedisStore,
    ttl: Duration,
}

impl GenerationCache {
    /// A cache over `store` whose entries expire after `ttl`.
    pub fn new(store: RedisStore, ttl: Duration) -> Self {
        GenerationCache { store, ttl }
    }

    fn key(&self, key: &GenerationKey) -> String {
        let mut h = Sha256::new();
        h.update(key.model.as_bytes());
        h.update([0]);
        h.update(key.prompt.as_bytes());
        h.update([0]);
        canonical(key.params, &mut h);
        self.store.digest_key("gen:", &h.finalize().into())
    }

    /// The cached response, if any.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "generations.get")
    )]
    pub async fn get(&self, key: &GenerationKey<'_>) -> Result<Option<String>> {
        self.store
            .meter()
            .measure("generations.get", async move {
                let mut conn = self.store.connection();
                conn.get(self.key(key))
                    .await
                    .map_err(|e| classify(&e, "generation cache get"))
            })
            .await
    }

    /// Caches `response` unless its classification forbids it; returns whether it was stored.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "generations.put")
    )]
    pub async fn put(
        &self,
        key: &GenerationKey<'_>,
        response: &str,
        classification: Sensitivity,
    ) -> Result<bool> {
        self.store
            .meter()
            .measure("generations.put", async move {
                if classification >= Sensitivity::Pii {
                    return Ok(false);
                }
                let mut conn = self.store.connection();
                conn.pset_ex::<_, _, ()>(
                    self.key(key),
                    response,
                    self.ttl.as_millis().max(1) as u64,
                )
                .await
                .map_err(|e| classify(&e, "generation cache put"))?;
                Ok(true)
            })
            .await
    }
}
