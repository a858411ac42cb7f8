//! Vector search: udl's in-process HNSW index against exact search over the same vectors.
//!
//! Prints index build time, recall@10 of the index against exact search, and queries per
//! second of both. The vectors are synthetic (clustered, like real embeddings).

use std::time::Instant;

use udl::mongo::{exact_top_k, VectorIndex};

const POINTS: usize = 100_000;
const DIMENSION: usize = 384;
const QUERIES: usize = 200;
const K: usize = 10;
const EF: usize = 128;
const CLUSTERS: usize = 200;

/// Deterministic xorshift generator: no RNG dependency, same data every run.
struct Xorshift(u64);

impl Xorshift {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f32 / 500_000.0 - 1.0
    }
}

/// Points scattered around cluster centres, as embeddings of related texts are.
fn synthetic(rng: &mut Xorshift, centres: &[Vec<f32>], count: usize) -> Vec<Vec<f32>> {
    (0..count)
        .map(|i| {
            centres[i % centres.len()]
                .iter()
                .map(|c| c + 0.35 * rng.unit())
                .collect()
        })
        .collect()
}

/// Runs the vector scenario and prints its lines.
pub fn run() {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let centres: Vec<Vec<f32>> = (0..CLUSTERS)
        .map(|_| (0..DIMENSION).map(|_| rng.unit()).collect())
        .collect();
    let points = synthetic(&mut rng, &centres, POINTS);
    let queries = synthetic(&mut rng, &centres, QUERIES);
    let keys: Vec<String> = (0..POINTS).map(|i| format!("p{i}")).collect();

    let started = Instant::now();
    let index = VectorIndex::new(DIMENSION, POINTS);
    index.insert_many(keys.iter().cloned().zip(points.iter().cloned()).collect());
    let build = started.elapsed();

    let started = Instant::now();
    let exact: Vec<Vec<(String, f32)>> = queries
        .iter()
        .map(|q| {
            exact_top_k(
                keys.iter()
                    .map(String::as_str)
                    .zip(points.iter().map(Vec::as_slice)),
                q,
                K,
            )
        })
        .collect();
    let exact_qps = QUERIES as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let approx: Vec<Vec<(String, f32)>> = queries.iter().map(|q| index.search(q, K, EF)).collect();
    let index_qps = QUERIES as f64 / started.elapsed().as_secs_f64();

    let hits: usize = exact
        .iter()
        .zip(&approx)
        .map(|(e, a)| {
            a.iter()
                .filter(|(k, _)| e.iter().any(|(ek, _)| ek == k))
                .count()
        })
        .sum();
    let recall = hits as f64 / (QUERIES * K) as f64;
    println!(
        "vector: {POINTS} x {DIMENSION} synthetic embeddings, {QUERIES} queries, k={K}, ef={EF}"
    );
    println!("index_build_s            {:>12.1}", build.as_secs_f64());
    println!("recall_at_10             {recall:>12.3}");
    println!(
        "{:<24} {:>12} {:>12} {:>6}",
        "scenario", "index_qps", "exact_qps", "ratio"
    );
    println!(
        "{:<24} {index_qps:>12.0} {exact_qps:>12.0} {:>6.1}",
        "nearest_k10",
        index_qps / exact_qps
    );
}
