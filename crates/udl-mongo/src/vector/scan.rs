//! A quantized exhaustive scan. Every vector is kept twice: as int8 codes with a scale of
//! its own (a quarter of its f32 size) and as a unit f32 vector. A search scores every code
//! with one integer dot product (vectorized for the CPU found at run time), keeps the best
//! few times `k`, and re-scores those exactly. Its cost grows with the collection, but its
//! recall does not depend on how the vectors are spread, which is where graphs fail: on
//! near-uniform directions an HNSW graph explores most of itself for 0.95 recall@10.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use hnsw_rs::anndists::dist::Distance as _;
use pulp::Arch;

use super::index::UnitDot;

/// Candidates re-scored exactly, per result asked for: int8 scores order a collection's
/// vectors almost as f32 does, so the true top `k` lie well within the best `4k`.
const RESCORED_PER_RESULT: usize = 4;
/// Candidates re-scored at least.
const RESCORED_AT_LEAST: usize = 40;

/// Int8 codes and unit vectors, one row per slot.
pub(super) struct Scan {
    dimension: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    units: Vec<f32>,
    arch: Arch,
}

impl Scan {
    pub fn new(dimension: usize, capacity: usize) -> Self {
        Scan {
            dimension,
            codes: Vec::with_capacity(dimension * capacity),
            scales: Vec::with_capacity(capacity),
            units: Vec::with_capacity(dimension * capacity),
            arch: Arch::new(),
        }
    }

    /// Rows held, tombstones included.
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// Appends `unit` (a unit vector of the scan's dimension) as the next slot.
    pub fn push(&mut self, unit: &[f32]) {
        let scale = quantize_into(unit, &mut self.codes);
        self.scales.push(scale);
        self.units.extend_from_slice(unit);
    }

    /// Every unit vector, slot after slot.
    pub fn units(&self) -> &[f32] {
        &self.units
    }

    /// A scan of `units` (rows of `dimension`), as [`Scan::units`] returned them.
    pub fn from_units(dimension: usize, units: Vec<f32>) -> Self {
        let rows = units.len() / dimension.max(1);
        let mut scan = Scan::new(dimension, rows);
        for row in units.chunks_exact(dimension) {
            scan.push(row);
        }
        scan
    }

    /// The `k` live slots most similar to `query` (a unit vector), best first, with their
    /// exact cosine similarity.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        live: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let mut query_codes = Vec::with_capacity(self.dimension);
        quantize_into(query, &mut query_codes);
        let mut dots = vec![0_i32; self.len()];
        let (codes, dimension) = (&self.codes, self.dimension);
        self.arch.dispatch(
            #[inline(always)]
            || {
                for (dot, row) in dots.iter_mut().zip(codes.chunks_exact(dimension)) {
                    *dot = row
                        .iter()
                        .zip(&query_codes)
                        .map(|(a, b)| i32::from(*a) * i32::from(*b))
                        .sum();
                }
            },
        );
        let wanted = (k * RESCORED_PER_RESULT).max(RESCORED_AT_LEAST);
        let mut best: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(wanted + 1);
        for (slot, (dot, scale)) in dots.iter().zip(&self.scales).enumerate() {
            let score = *dot as f32 * scale;
            let better = best.len() < wanted || best.peek().is_some_and(|w| score > w.0 .0);
            if better && live(slot) {
                best.push(Reverse(Scored(score, slot)));
                if best.len() > wanted {
                    best.pop();
                }
            }
        }
        let mut exact: Vec<(usize, f32)> = best
            .into_iter()
            .map(|Reverse(Scored(_, slot))| {
                let row = &self.units[slot * dimension..(slot + 1) * dimension];
                (slot, 1.0 - UnitDot.eval(query, row))
            })
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        exact.truncate(k);
        exact
    }
}

/// Appends `vector`'s int8 codes to `codes` and returns the scale they are in.
fn quantize_into(vector: &[f32], codes: &mut Vec<i8>) -> f32 {
    let largest = vector.iter().fold(0.0_f32, |m, x| m.max(x.abs()));
    let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    codes.extend(vector.iter().map(|x| (x / scale).round() as i8));
    scale
}

/// An approximate score and its slot, ordered by score.
struct Scored(f32, usize);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn the_scan_finds_the_exact_neighbours_and_skips_what_is_not_live() {
        let mut scan = Scan::new(3, 4);
        for v in [
            [1.0, 0.0, 0.0],
            [0.9, 0.1, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
        ] {
            scan.push(&unit(&v));
        }
        let found = scan.search(&unit(&[1.0, 0.05, 0.0]), 2, |_| true);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![0, 1]);
        assert!(found[0].1 > 0.99 && found[0].1 <= 1.0);
        let found = scan.search(&unit(&[1.0, 0.05, 0.0]), 2, |slot| slot != 0);
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_scan_rebuilt_from_its_units_answers_the_same() {
        let mut scan = Scan::new(2, 2);
        scan.push(&unit(&[1.0, 0.2]));
        scan.push(&unit(&[0.2, 1.0]));
        let again = Scan::from_units(2, scan.units().to_vec());
        let query = unit(&[0.3, 1.0]);
        assert_eq!(
            scan.search(&query, 2, |_| true),
            again.search(&query, 2, |_| true)
        );
    }
}
