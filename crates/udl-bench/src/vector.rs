//! Vector search: udl's in-process HNSW index against exact search over the same vectors.
//!
//! Prints, for clustered synthetic vectors (like real embeddings) and for uniformly random
//! unit vectors (the hard case for any ANN index), and for both kinds of index (the
//! quantized scan udl uses at this size, and the HNSW graph it uses above `SCAN_LIMIT`):
//! the build time, the time to save the index and to open the save again, recall@10 against
//! the exact search, and queries per second of both. The graph is searched at fixed `ef`
//! steps and at the `ef` it calibrated for itself.

use std::time::{Duration, Instant};

use udl::mongo::{exact_top_k, VectorIndex};

const POINTS: usize = 100_000;
const DIMENSION: usize = 384;
const QUERIES: usize = 200;
const K: usize = 10;
/// Candidates a graph search explores: recall against speed, for each data set.
const EFS: [usize; 4] = [64, 128, 256, 512];
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

    /// A standard normal sample (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u1 = (self.unit() + 1.0) / 2.0;
        let u2 = (self.unit() + 1.0) / 2.0;
        (-2.0 * u1.max(1e-9).ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

/// Points uniformly distributed on the unit sphere.
fn uniform(rng: &mut Xorshift, count: usize) -> Vec<Vec<f32>> {
    (0..count)
        .map(|_| {
            let v: Vec<f32> = (0..DIMENSION).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
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
    let clustered = (
        synthetic(&mut rng, &centres, POINTS),
        synthetic(&mut rng, &centres, QUERIES),
    );
    let random = (uniform(&mut rng, POINTS), uniform(&mut rng, QUERIES));
    println!("vector: {POINTS} x {DIMENSION}, {QUERIES} queries, k={K}");
    println!(
        "{:<14} {:<16} {:>8} {:>7} {:>7} {:>7} {:>10} {:>10} {:>6}",
        "data", "index", "build_s", "save_s", "open_s", "recall", "index_qps", "exact_qps", "ratio"
    );
    for (name, (points, queries)) in [("clustered", clustered), ("uniform_unit", random)] {
        let keys: Vec<String> = (0..points.len()).map(|i| format!("p{i}")).collect();
        let (exact, exact_qps) = exact_answers(&keys, &points, &queries);
        let kinds: [(&str, Empty); 2] =
            [("scan", VectorIndex::scan), ("graph", VectorIndex::graph)];
        for (kind, empty) in kinds {
            let figures = measure(&keys, &points, &queries, &exact, empty);
            for search in &figures.searches {
                let index = match search.ef {
                    _ if kind == "scan" => kind.to_owned(),
                    Some(ef) if search.calibrated => format!("graph ef={ef}*"),
                    Some(ef) => format!("graph ef={ef}"),
                    None => kind.to_owned(),
                };
                println!(
                    "{name:<14} {index:<16} {:>8.1} {:>7.1} {:>7.1} {:>7.3} {:>10.0} {:>10.0} {:>6.1}",
                    figures.build.as_secs_f64(),
                    figures.save.as_secs_f64(),
                    figures.open.as_secs_f64(),
                    search.recall,
                    search.qps,
                    exact_qps,
                    search.qps / exact_qps
                );
            }
        }
    }
    println!("(* the ef the graph calibrated for itself at build, as searches use it)");
}

/// Makes an empty index of a kind, for a dimension and capacity.
type Empty = fn(usize, usize) -> VectorIndex;

struct Figures {
    build: Duration,
    save: Duration,
    open: Duration,
    searches: Vec<Searched>,
}

/// Index searches at one `ef` (`None` for a scan).
struct Searched {
    ef: Option<usize>,
    /// The `ef` calibration chose.
    calibrated: bool,
    recall: f64,
    qps: f64,
}

/// The exact top-k of every query, and the exact scan's queries per second.
fn exact_answers(
    keys: &[String],
    points: &[Vec<f32>],
    queries: &[Vec<f32>],
) -> (Vec<Vec<(String, f32)>>, f64) {
    let started = Instant::now();
    let exact = queries
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
    (
        exact,
        queries.len() as f64 / started.elapsed().as_secs_f64(),
    )
}

fn measure(
    keys: &[String],
    points: &[Vec<f32>],
    queries: &[Vec<f32>],
    exact: &[Vec<(String, f32)>],
    empty: Empty,
) -> Figures {
    let started = Instant::now();
    let items = keys.iter().cloned().zip(points.iter().cloned()).collect();
    let (built, _, _) = empty(DIMENSION, points.len()).built_from(items);
    let build = started.elapsed();

    // Saved and opened as a restart with `mongo.vector_index_dir` does; the opened index
    // answers the queries.
    let dir = std::env::temp_dir().join(format!("udl-bench-vector-{}", std::process::id()));
    built.advance_to(vec![0]);
    let started = Instant::now();
    built.save_to(&dir).expect("save the index");
    let save = started.elapsed();
    drop(built);
    let started = Instant::now();
    let index = VectorIndex::open_from(&dir)
        .expect("open the saved index")
        .expect("an index was saved");
    let open = started.elapsed();
    std::fs::remove_dir_all(&dir).expect("remove the saved index");

    let steps: Vec<(Option<usize>, bool)> = if index.is_graph() {
        EFS.iter()
            .map(|&ef| (Some(ef), false))
            .chain([(Some(index.ef()), true)])
            .collect()
    } else {
        vec![(None, false)]
    };
    let searches = steps
        .into_iter()
        .map(|(ef, calibrated)| {
            let started = Instant::now();
            let approx: Vec<Vec<(String, f32)>> = queries
                .iter()
                .map(|q| index.search(q, K, ef.unwrap_or(K)))
                .collect();
            let qps = queries.len() as f64 / started.elapsed().as_secs_f64();
            Searched {
                ef,
                calibrated,
                recall: recall(exact, &approx),
                qps,
            }
        })
        .collect();
    Figures {
        build,
        save,
        open,
        searches,
    }
}

/// Share of the exact top-k that the approximate answers found.
fn recall(exact: &[Vec<(String, f32)>], approx: &[Vec<(String, f32)>]) -> f64 {
    let hits: usize = exact
        .iter()
        .zip(approx)
        .map(|(e, a)| {
            a.iter()
                .filter(|(k, _)| e.iter().any(|(ek, _)| ek == k))
                .count()
        })
        .sum();
    hits as f64 / (exact.len() * K) as f64
}
