//! An in-process approximate nearest-neighbour index (HNSW, cosine) over one vector field.
//!
//! `hnsw_rs` cannot delete points, so a replaced or deleted key leaves a tombstone that
//! searches skip; the graph is rebuilt from the collection when the process restarts.

use std::collections::HashMap;
use std::sync::RwLock;

use hnsw_rs::anndists::dist::DistCosine;
use hnsw_rs::hnsw::Hnsw;

/// Graph degree: neighbours kept per point and layer.
const MAX_CONNECTIONS: usize = 24;
/// Candidates explored while inserting.
const EF_CONSTRUCTION: usize = 200;
/// Layers of the graph.
const MAX_LAYERS: usize = 16;

/// Keys are strings (the canonical form of a document id); data ids are slots.
#[derive(Default)]
struct Slots {
    slot_of: HashMap<String, usize>,
    key_of: Vec<Option<String>>,
}

/// Approximate index of `dimension`-dimensional vectors by key.
pub struct VectorIndex {
    dimension: usize,
    graph: Hnsw<'static, f32, DistCosine>,
    slots: RwLock<Slots>,
}

impl VectorIndex {
    /// An empty index expecting about `capacity` vectors.
    pub fn new(dimension: usize, capacity: usize) -> Self {
        VectorIndex {
            dimension,
            graph: Hnsw::new(
                MAX_CONNECTIONS,
                capacity.max(1_000),
                MAX_LAYERS,
                EF_CONSTRUCTION,
                DistCosine {},
            ),
            slots: RwLock::new(Slots::default()),
        }
    }

    /// Dimension of every vector in the index.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Live (not replaced or removed) vectors.
    pub fn len(&self) -> usize {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .slot_of
            .len()
    }

    /// Whether no live vector is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces vectors, in parallel. Vectors of another dimension, and zero
    /// vectors (no direction, so no cosine), are skipped and counted in the result.
    pub fn insert_many(&self, items: Vec<(String, Vec<f32>)>) -> usize {
        let mut skipped = 0;
        let mut batch = Vec::with_capacity(items.len());
        {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            for (key, vector) in items {
                if vector.len() != self.dimension || vector.iter().all(|x| *x == 0.0) {
                    skipped += 1;
                    continue;
                }
                let slot = slots.key_of.len();
                slots.key_of.push(Some(key.clone()));
                if let Some(old) = slots.slot_of.insert(key, slot) {
                    slots.key_of[old] = None;
                }
                batch.push((vector, slot));
            }
        }
        let refs: Vec<(&Vec<f32>, usize)> = batch.iter().map(|(v, s)| (v, *s)).collect();
        self.graph.parallel_insert(&refs);
        skipped
    }

    /// Removes `key` (its point stays in the graph as a tombstone).
    pub fn remove(&self, key: &str) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.slot_of.remove(key) {
            slots.key_of[slot] = None;
        }
    }

    /// About the `k` live keys most similar to `query`, best first, with cosine similarity.
    /// `ef` (≥ k) trades speed for recall.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(String, f32)> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let live = |id: &usize| slots.key_of.get(*id).is_some_and(Option::is_some);
        self.graph
            .search_filter(query, k, ef.max(k), Some(&live))
            .into_iter()
            .filter_map(|n| {
                let key = slots.key_of.get(n.d_id)?.clone()?;
                Some((key, 1.0 - n.distance))
            })
            .collect()
    }
}

/// The `k` most similar of `vectors` to `query` by exhaustive comparison, best first.
pub fn exact_top_k<'a>(
    vectors: impl Iterator<Item = (&'a str, &'a [f32])>,
    query: &[f32],
    k: usize,
) -> Vec<(String, f32)> {
    let query_norm = super::norm(query);
    let mut best: Vec<(&str, f32)> = Vec::with_capacity(k + 1);
    for (key, v) in vectors {
        let score = super::cosine(query, query_norm, v);
        if best.len() < k || best.last().is_some_and(|(_, worst)| score > *worst) {
            let at = best.partition_point(|(_, s)| *s >= score);
            best.insert(at, (key, score));
            best.truncate(k);
        }
    }
    best.into_iter()
        .map(|(key, s)| (key.to_owned(), s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(n: usize, dim: usize) -> Vec<(String, Vec<f32>)> {
        // A deterministic pseudo-random spread (xorshift), no RNG dependency needed.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..n)
            .map(|i| {
                let v = (0..dim)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state % 2000) as f32 / 1000.0 - 1.0
                    })
                    .collect();
                (format!("k{i}"), v)
            })
            .collect()
    }

    #[test]
    fn approximate_search_agrees_with_exact_on_a_small_set() {
        let data = vectors(2_000, 16);
        let index = VectorIndex::new(16, data.len());
        assert_eq!(index.insert_many(data.clone()), 0);
        let mut hits = 0;
        for (_, query) in data.iter().step_by(97).take(20) {
            let exact = exact_top_k(
                data.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
                query,
                10,
            );
            let approx = index.search(query, 10, 100);
            hits += approx
                .iter()
                .filter(|(k, _)| exact.iter().any(|(e, _)| e == k))
                .count();
        }
        assert!(hits as f64 / 200.0 >= 0.95, "recall {hits}/200");
    }

    #[test]
    fn removed_and_replaced_keys_are_not_returned_stale() {
        let index = VectorIndex::new(2, 10);
        index.insert_many(vec![
            ("a".into(), vec![1.0, 0.0]),
            ("b".into(), vec![0.0, 1.0]),
        ]);
        index.remove("a");
        let found = index.search(&[1.0, 0.0], 2, 10);
        assert!(found.iter().all(|(k, _)| k != "a"), "{found:?}");
        index.insert_many(vec![("b".into(), vec![1.0, 0.1])]);
        let found = index.search(&[1.0, 0.0], 1, 10);
        assert_eq!(found[0].0, "b");
        assert!(found[0].1 > 0.99);
        assert_eq!(index.len(), 1);
        assert_eq!(
            index.insert_many(vec![("c".into(), vec![1.0])]),
            1,
            "wrong dimension skipped"
        );
    }
}
