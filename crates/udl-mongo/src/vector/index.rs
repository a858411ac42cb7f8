//! An in-process nearest-neighbour index (cosine) over one vector field: a quantized scan
//! (`scan.rs`) up to [`SCAN_LIMIT`] vectors, an HNSW graph (`hnsw_rs`) above.
//!
//! Points are never deleted (`hnsw_rs` cannot, and the scan's slots stay put), so a replaced
//! or deleted key leaves a tombstone that searches skip. Writing a key's vector again
//! unchanged leaves none: each live key keeps a digest of its vector, so a change feed
//! replaying this process's own writes costs nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use super::scan::Scan;
use super::{lock, read, write};

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::{Hnsw, Neighbour};

/// Up to this many vectors an index is a quantized scan: full recall on any data and a few
/// milliseconds per search at this size, built in a fraction of a second, where a graph
/// takes minutes to build and its recall depends on how the vectors are spread.
pub const SCAN_LIMIT: usize = 200_000;

/// Graph degree: neighbours kept per point and layer.
const MAX_CONNECTIONS: usize = 32;
/// Candidates explored while inserting.
const EF_CONSTRUCTION: usize = 100;
/// Layers of the graph.
const MAX_LAYERS: usize = 16;

/// Cosine distance between vectors normalized before they reach the graph: `1 - dot`, summed
/// in eight lanes so the compiler vectorizes it (`hnsw_rs`'s cosine recomputes both norms in
/// `f64`, one term at a time, which made most of the build time).
#[derive(Default, Clone, Copy)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let mut lanes = [0.0_f32; 8];
        let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = a_chunks
            .remainder()
            .iter()
            .zip(b_chunks.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in a_chunks.zip(b_chunks) {
            for lane in 0..8 {
                lanes[lane] += x[lane] * y[lane];
            }
        }
        (1.0 - (lanes.iter().sum::<f32>() + tail)).max(0.0)
    }
}

/// `vector` scaled to unit length (it is not all zero).
pub(super) fn unit(vector: &[f32]) -> Vec<f32> {
    let norm = super::norm(vector);
    vector.iter().map(|x| x / norm).collect()
}

/// Where a live key's vector is, and what it was.
#[derive(Clone, Copy)]
pub(super) struct Live {
    pub slot: usize,
    pub digest: u64,
}

/// Keys are strings (the canonical form of a document id); data ids are slots.
#[derive(Default)]
pub(super) struct Slots {
    pub live: HashMap<String, Live>,
    /// The key of each point of the graph, `None` for a tombstone.
    pub key_of: Vec<Option<String>>,
}

/// Where an index keeps its points.
pub(super) enum Points {
    /// Every vector scanned (see `scan.rs`).
    Scan(RwLock<Scan>),
    /// An HNSW graph, explored `ef` candidates at a time.
    Graph(Hnsw<'static, f32, UnitDot>),
}

/// Nearest-neighbour index of `dimension`-dimensional vectors by key.
pub struct VectorIndex {
    pub(super) dimension: usize,
    pub(super) points: Points,
    pub(super) slots: RwLock<Slots>,
    /// Held shared by every change to the index and alone while it is saved, so a saved
    /// graph, its keys and its position agree.
    pub(super) changing: RwLock<()>,
    /// Where in its collection's changes the index is, as the change feed's resume point.
    pub(super) position: Mutex<Option<Vec<u8>>>,
    /// Opened from a save rather than built.
    pub(super) opened: bool,
    /// Candidates a search explores unless told otherwise (see `calibrate.rs`).
    ef: AtomicUsize,
}

impl VectorIndex {
    /// An empty index expecting about `capacity` vectors: a scan up to [`SCAN_LIMIT`], a
    /// graph above.
    pub fn new(dimension: usize, capacity: usize) -> Self {
        Self::sized(dimension, capacity, SCAN_LIMIT)
    }

    /// An empty index expecting about `capacity` vectors: a scan up to `scan_limit`, a graph
    /// above.
    pub fn sized(dimension: usize, capacity: usize, scan_limit: usize) -> Self {
        if capacity <= scan_limit {
            Self::scan(dimension, capacity)
        } else {
            Self::graph(dimension, capacity)
        }
    }

    /// An empty quantized scan, whatever the size.
    pub fn scan(dimension: usize, capacity: usize) -> Self {
        let scan = Scan::new(dimension, capacity);
        Self::from_parts(
            dimension,
            Points::Scan(RwLock::new(scan)),
            Slots::default(),
            None,
        )
    }

    /// An empty HNSW graph, whatever the size.
    pub fn graph(dimension: usize, capacity: usize) -> Self {
        let graph = Hnsw::new(
            MAX_CONNECTIONS,
            capacity.max(1_000),
            MAX_LAYERS,
            EF_CONSTRUCTION,
            UnitDot,
        );
        Self::from_parts(dimension, Points::Graph(graph), Slots::default(), None)
    }

    /// Whether the index is a graph (else a scan).
    pub fn is_graph(&self) -> bool {
        matches!(self.points, Points::Graph(_))
    }

    pub(super) fn from_parts(
        dimension: usize,
        points: Points,
        slots: Slots,
        position: Option<Vec<u8>>,
    ) -> Self {
        VectorIndex {
            dimension,
            points,
            slots: RwLock::new(slots),
            changing: RwLock::new(()),
            position: Mutex::new(position),
            opened: false,
            ef: AtomicUsize::new(Self::DEFAULT_EF),
        }
    }

    /// Candidates a graph search explores before the graph is calibrated.
    pub const DEFAULT_EF: usize = 128;

    /// Candidates a graph search explores: [`Self::DEFAULT_EF`], or what calibration chose
    /// (a scan looks at every vector and ignores it).
    pub fn ef(&self) -> usize {
        self.ef.load(Ordering::Relaxed)
    }

    pub(super) fn set_ef(&self, ef: usize) {
        self.ef.store(ef, Ordering::Relaxed);
    }

    /// Dimension of every vector in the index.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Live (not replaced or removed) vectors.
    pub fn len(&self) -> usize {
        read(&self.slots).live.len()
    }

    /// Points of replaced or removed vectors still in the graph.
    pub fn tombstones(&self) -> usize {
        let slots = read(&self.slots);
        slots.key_of.len() - slots.live.len()
    }

    /// The change feed position the index reflects, as resume point bytes.
    pub fn position(&self) -> Option<Vec<u8>> {
        lock(&self.position).clone()
    }

    /// Notes that every change up to `position` is reflected.
    pub fn advance_to(&self, position: Vec<u8>) {
        *lock(&self.position) = Some(position);
    }

    /// Whether no live vector is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces vectors, in parallel; a key whose vector is unchanged is left as it
    /// is. Vectors of another dimension, and zero vectors (no direction, so no cosine), are
    /// skipped and counted in the result (a key given one loses its earlier vector).
    pub fn insert_many(&self, items: Vec<(String, Vec<f32>)>) -> usize {
        let _changing = read(&self.changing);
        let mut skipped = 0;
        let mut batch = Vec::with_capacity(items.len());
        {
            let mut slots = write(&self.slots);
            for (key, vector) in items {
                if vector.len() != self.dimension || vector.iter().all(|x| *x == 0.0) {
                    skipped += 1;
                    slots.remove(&key);
                    continue;
                }
                let digest = digest(&vector);
                if slots.live.get(&key).is_some_and(|l| l.digest == digest) {
                    continue;
                }
                let slot = slots.key_of.len();
                slots.key_of.push(Some(key.clone()));
                if let Some(old) = slots.live.insert(key, Live { slot, digest }) {
                    slots.key_of[old.slot] = None;
                }
                let unit = unit(&vector);
                // A scan's rows are its slots, so they are appended while the slots are held.
                match &self.points {
                    Points::Scan(scan) => write(scan).push(&unit),
                    Points::Graph(_) => batch.push((unit, slot)),
                }
            }
        }
        if let Points::Graph(graph) = &self.points {
            let refs: Vec<(&Vec<f32>, usize)> = batch.iter().map(|(v, s)| (v, *s)).collect();
            graph.parallel_insert(&refs);
        }
        skipped
    }

    /// Removes `key` (its point stays in the graph as a tombstone).
    pub fn remove(&self, key: &str) {
        let _changing = read(&self.changing);
        write(&self.slots).remove(key);
    }

    /// About the `k` live keys most similar to `query`, best first, with cosine similarity.
    /// `ef` (≥ k) trades a graph's speed for recall; a scan ignores it.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(String, f32)> {
        let slots = read(&self.slots);
        if query.len() != self.dimension || query.iter().all(|x| *x == 0.0) {
            return Vec::new();
        }
        let query = unit(query);
        let keyed = |found: Vec<(usize, f32)>| -> Vec<(String, f32)> {
            found
                .into_iter()
                .filter_map(|(slot, similarity)| {
                    Some((slots.key_of.get(slot)?.clone()?, similarity))
                })
                .take(k)
                .collect()
        };
        let live = |slot: usize| slots.key_of.get(slot).is_some_and(Option::is_some);
        let graph = match &self.points {
            Points::Scan(scan) => return keyed(read(scan).search(&query, k, live)),
            Points::Graph(graph) => graph,
        };
        let ef = ef.max(k);
        let similar = |found: Vec<Neighbour>| -> Vec<(usize, f32)> {
            found
                .into_iter()
                .map(|n| (n.d_id, 1.0 - n.distance))
                .collect()
        };
        // hnsw_rs stops exploring early only when no filter is given (a filtered search runs
        // until its candidates run out, which on hard data visits most of the graph), so
        // tombstones are dropped from the unfiltered best `ef` instead.
        let found = keyed(similar(graph.search_filter(&query, ef, ef, None)));
        if found.len() >= k.min(slots.live.len()) {
            return found;
        }
        // So many tombstones were among the nearest that fewer than k live keys were left:
        // the filtered search walks past them.
        let live = |id: &usize| live(*id);
        keyed(similar(graph.search_filter(&query, k, ef, Some(&live))))
    }
}

impl Slots {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.live.remove(key) {
            self.key_of[old.slot] = None;
        }
    }
}

/// A digest of a vector's exact bits (FNV-1a over its words), stable across processes.
pub(super) fn digest(vector: &[f32]) -> u64 {
    vector.iter().fold(0xcbf2_9ce4_8422_2325, |hash, x| {
        (hash ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
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
        for index in [
            VectorIndex::scan(16, data.len()),
            VectorIndex::graph(16, data.len()),
        ] {
            assert_eq!(index.insert_many(data.clone()), 0);
            assert_recall(&index, &data);
        }
    }

    fn assert_recall(index: &VectorIndex, data: &[(String, Vec<f32>)]) {
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
        assert!(
            hits as f64 / 200.0 >= 0.95,
            "recall {hits}/200 ({})",
            index.is_graph()
        );
    }

    #[test]
    fn removed_and_replaced_keys_are_not_returned_stale() {
        for index in [VectorIndex::scan(2, 10), VectorIndex::graph(2, 10)] {
            removed_and_replaced_are_skipped(index);
        }
    }

    fn removed_and_replaced_are_skipped(index: VectorIndex) {
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
            index.tombstones(),
            2,
            "a removed, b's first vector replaced"
        );
        index.insert_many(vec![("b".into(), vec![1.0, 0.1])]);
        assert_eq!(
            index.tombstones(),
            2,
            "the same vector again leaves no tombstone"
        );
        assert_eq!(
            index.insert_many(vec![("c".into(), vec![1.0])]),
            1,
            "wrong dimension skipped"
        );
    }
}
