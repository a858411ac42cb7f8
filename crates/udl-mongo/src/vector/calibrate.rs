//! How many candidates a graph search explores (`ef`), chosen per graph from its own data. On
//! clustered data (embeddings of related texts) a small `ef` finds the true neighbours; on
//! near-uniform directions the same `ef` misses many. A sample held out of the build serves
//! as queries (a point already in the graph finds itself and then its own edges, which
//! flatters recall) and is scored against an exact scan of the indexed points.

use hnsw_rs::anndists::dist::Distance as _;

use super::index::{unit, Points, UnitDot, VectorIndex};
use super::read;

/// Recall@10 the chosen `ef` reaches on the sample: a point above the 0.95 promised, for
/// the sample's own error (about ±0.01 at 100 queries).
pub const RECALL_TARGET: f64 = 0.96;
/// Vectors held out of the build as sample queries.
const HELD_OUT: usize = 100;
const K: usize = 10;
/// Tried in order; the first step reaching the target is kept, else the last.
const LADDER: [usize; 12] = [40, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048];
/// Smaller builds keep the default `ef` (the exact scan serves small collections anyway).
const CALIBRATED_FROM: usize = 10 * HELD_OUT;

/// What calibration chose and measured.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    /// Candidates each search explores from now on.
    pub ef: usize,
    /// Recall@10 at that `ef` on the held-out sample.
    pub recall: f64,
}

impl VectorIndex {
    /// This empty index filled with `items`, with the count of items skipped (see
    /// [`VectorIndex::insert_many`]) and, for a graph of enough items, its calibration: its
    /// search `ef` chosen on a sample of them.
    pub fn built_from(self, items: Vec<(String, Vec<f32>)>) -> (Self, usize, Option<Calibration>) {
        if !self.is_graph() || items.len() < CALIBRATED_FROM {
            let skipped = self.insert_many(items);
            return (self, skipped, None);
        }
        let every = items.len() / HELD_OUT;
        let (mut held, mut rest) = (
            Vec::with_capacity(HELD_OUT),
            Vec::with_capacity(items.len()),
        );
        for (i, item) in items.into_iter().enumerate() {
            if i % every == 0 && held.len() < HELD_OUT {
                held.push(item);
            } else {
                rest.push(item);
            }
        }
        let mut skipped = self.insert_many(rest);
        let queries: Vec<Vec<f32>> = held
            .iter()
            .filter(|(_, v)| v.len() == self.dimension && v.iter().any(|x| *x != 0.0))
            .map(|(_, v)| unit(v))
            .collect();
        let calibration = self.calibrate(&queries);
        skipped += self.insert_many(held);
        (self, skipped, calibration)
    }

    /// Sets [`VectorIndex::ef`] to the smallest step of the ladder whose recall@10 on
    /// `queries` (unit vectors not in the index) reaches [`RECALL_TARGET`].
    fn calibrate(&self, queries: &[Vec<f32>]) -> Option<Calibration> {
        let Points::Graph(graph) = &self.points else {
            return None;
        };
        let live: Vec<bool> = {
            let slots = read(&self.slots);
            slots.key_of.iter().map(Option::is_some).collect()
        };
        let is_live = |id: usize| live.get(id).copied().unwrap_or(false);
        let points: Vec<_> = graph
            .get_point_indexation()
            .into_iter()
            .filter(|p| is_live(p.get_origin_id()))
            .collect();
        if queries.is_empty() || points.len() < K {
            return None;
        }
        let truth: Vec<Vec<usize>> = queries
            .iter()
            .map(|q| {
                let mut scored: Vec<(f32, usize)> = points
                    .iter()
                    .map(|p| (UnitDot.eval(q, p.get_v()), p.get_origin_id()))
                    .collect();
                scored.select_nth_unstable_by(K - 1, |a, b| a.0.total_cmp(&b.0));
                scored[..K].iter().map(|(_, id)| *id).collect()
            })
            .collect();
        let mut chosen = None;
        for ef in LADDER {
            let hits: usize = queries
                .iter()
                .zip(&truth)
                .map(|(q, nearest)| {
                    graph
                        .search_filter(q, K, ef, None)
                        .iter()
                        .filter(|n| is_live(n.d_id) && nearest.contains(&n.d_id))
                        .count()
                })
                .sum();
            let recall = hits as f64 / (queries.len() * K) as f64;
            chosen = Some(Calibration { ef, recall });
            if recall >= RECALL_TARGET {
                break;
            }
        }
        if let Some(c) = chosen {
            self.set_ef(c.ef);
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_enough_build_is_calibrated_to_the_recall_target() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as f32 / 1000.0 - 1.0
        };
        let items: Vec<(String, Vec<f32>)> = (0..3_000)
            .map(|i| (format!("k{i}"), (0..24).map(|_| next()).collect()))
            .collect();
        let (index, skipped, calibration) = VectorIndex::graph(24, items.len()).built_from(items);
        let calibration = calibration.expect("a graph of 3000 vectors is calibrated");
        assert_eq!(skipped, 0);
        assert_eq!(index.len(), 3_000, "the held-out sample is indexed too");
        assert_eq!(index.ef(), calibration.ef);
        assert!(
            calibration.recall >= RECALL_TARGET || calibration.ef == LADDER[LADDER.len() - 1],
            "{calibration:?}"
        );
    }

    #[test]
    fn a_small_graph_and_any_scan_keep_the_default_ef() {
        let items = vec![
            ("a".to_owned(), vec![1.0, 0.0]),
            ("b".to_owned(), vec![0.0, 1.0]),
        ];
        let (index, _, calibration) = VectorIndex::graph(2, 2).built_from(items.clone());
        assert!(calibration.is_none());
        assert_eq!(index.ef(), VectorIndex::DEFAULT_EF);
        let (index, _, calibration) = VectorIndex::new(2, 2).built_from(items);
        assert!(!index.is_graph() && calibration.is_none());
    }
}
