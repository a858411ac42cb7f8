//! Embedding cache: the vector of (model, normalised text), so the same text is never
//! embedded twice. Keys are hashes, so no text (possibly PHI) is ever a Redis key.

use std::time::Duration;

use redis::AsyncCommands as _;
use sha2::{Digest, Sha256};
use udl_core::Result;

use crate::error::classify;
use crate::store::RedisStore;

/// Format version of stored values; a value of another version is a miss.
const FORMAT: u8 = 1;

/// Caches embeddings in Redis with a TTL.
#[derive(Clone)]
pub struct EmbeddingCache {
    store: RedisStore,
    ttl: Duration,
}

/// Feeds `text` with whitespace trimmed and collapsed to single spaces, so trivially
/// different inputs share an entry (word by word: no copy of the text is made).
fn hash_normalised(text: &str, h: &mut Sha256) {
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            h.update(b" ");
        }
        h.update(word.as_bytes());
    }
}

/// `[version][model length u16][model][dimension u32][f32 little-endian...]`.
fn encode(model: &str, vector: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + model.len() + vector.len() * 4);
    out.push(FORMAT);
    out.extend_from_slice(&(model.len() as u16).to_le_bytes());
    out.extend_from_slice(model.as_bytes());
    out.extend_from_slice(&(vector.len() as u32).to_le_bytes());
    udl_core::put_vector(&mut out, vector);
    out
}

/// The vector in `bytes` if it was stored for `model` with `dimension` components.
fn decode(bytes: &[u8], model: &str, dimension: usize) -> Option<Vec<f32>> {
    let (&format, rest) = bytes.split_first()?;
    if format != FORMAT {
        return None;
    }
    let model_len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let stored_model = rest.get(2..2 + model_len)?;
    let rest = rest.get(2 + model_len..)?;
    let stored_dim = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let floats = rest.get(4..)?;
    if stored_model != model.as_bytes() || floats.len() != stored_dim * 4 {
        return None;
    }
    if stored_dim != dimension {
        tracing::warn!(
            model,
            stored_dim,
            dimension,
            "cached embedding has another dimension; treated as a miss"
        );
        return None;
    }
    udl_core::read_vector(floats)
}

impl EmbeddingCache {
    /// A cache over `store` whose entries expire after `ttl`.
    pub fn new(store: RedisStore, ttl: Duration) -> Self {
        EmbeddingCache { store, ttl }
    }

    /// The key of (model, text): a hash, never the text.
    pub fn key(&self, model: &str, text: &str) -> String {
        let mut h = Sha256::new();
        h.update(model.as_bytes());
        h.update([0]);
        hash_normalised(text, &mut h);
        self.store.digest_key("emb:", &h.finalize().into())
    }

    /// Cached vectors for `texts` (in order; `None` = miss), in one round trip. A stored
    /// vector of another dimension than `dimension` is a miss and a warning.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "embeddings.get_many")
    )]
    pub async fn get_many(
        &self,
        model: &str,
        dimension: usize,
        texts: &[&str],
    ) -> Result<Vec<Option<Vec<f32>>>> {
        self.store
            .meter()
            .measure("embeddings.get_many", async move {
                if texts.is_empty() {
                    return Ok(Vec::new());
                }
                let keys: Vec<String> = texts.iter().map(|t| self.key(model, t)).collect();
                let mut conn = self.store.connection();
                let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| classify(&e, "embedding cache get"))?;
                Ok(values
                    .into_iter()
                    .map(|v| v.and_then(|bytes| decode(&bytes, model, dimension)))
                    .collect())
            })
            .await
    }

    /// Stores vectors for `(text, vector)` pairs in one pipelined round trip.
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "embeddings.set_many")
    )]
    pub async fn set_many(&self, model: &str, entries: &[(&str, &[f32])]) -> Result<()> {
        self.store
            .meter()
            .measure("embeddings.set_many", async move {
                let mut pipe = redis::pipe();
                for (text, vector) in entries {
                    pipe.pset_ex(
                        self.key(model, text),
                        encode(model, vector),
                        self.ttl.as_millis().max(1) as u64,
                    )
                    .ignore();
                }
                self.store
                    .connection()
                    .apply(&pipe)
                    .await
                    .map_err(|e| classify(&e, "embedding cache set"))
            })
            .await
    }

    /// Removes the entry of (model, text).
    #[tracing::instrument(
        name = "udl.store",
        skip_all,
        fields(store = "redis", operation = "embeddings.forget")
    )]
    pub async fn forget(&self, model: &str, text: &str) -> Result<()> {
        self.store
            .meter()
            .measure("embeddings.forget", async move {
                let mut conn = self.store.connection();
                conn.del::<_, ()>(self.key(model, text))
                    .await
                    .map_err(|e| classify(&e, "embedding cache forget"))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_checks_model_and_dimension() {
        let v = [0.5_f32, -1.25, 3.0];
        let bytes = encode("fake-embed", &v);
        assert_eq!(decode(&bytes, "fake-embed", 3), Some(v.to_vec()));
        assert_eq!(decode(&bytes, "other-model", 3), None);
        assert_eq!(decode(&bytes, "fake-embed", 4), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1], "fake-embed", 3), None);
    }

    #[test]
    fn whitespace_is_normalised() {
        let digest = |text: &str| {
            let mut h = Sha256::new();
            hash_normalised(text, &mut h);
            h.finalize()
        };
        assert_eq!(
            digest("  hello \n\t world "),
            Sha256::digest(b"hello world")
        );
    }
}
