//! Similarity search.

use super::prelude::*;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Similarity search returns exactly the `k` most similar records with a vector, best
/// first, within the prefilter; stores without it refuse with `Unsupported`.
pub async fn nearest_returns_the_most_similar_records(s: Subject) {
    let r = repo(&s);
    let all = seed(&r, 24).await;
    let query = [1.0_f32, -0.5, 0.25];
    let active_only = field("active").eq(true);
    let outcome = r
        .nearest(&ctx(), "embedding", &query, 4, &active_only)
        .await;
    if !s.store.capabilities().supports(Capability::VectorSearch) {
        assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Unsupported);
        return;
    }
    let mut expected: Vec<(i64, f32)> = all
        .iter()
        .filter(|n| n.active)
        .filter_map(|n| n.embedding.as_ref().map(|e| (n.rank, cosine(&query, e))))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    expected.truncate(4);
    let found = outcome.expect("nearest");
    let got: Vec<i64> = found.iter().map(|(n, _)| n.rank).collect();
    assert_eq!(
        got,
        expected.iter().map(|(rank, _)| *rank).collect::<Vec<_>>()
    );
    for ((_, score), (_, want)) in found.iter().zip(&expected) {
        assert!((score - want).abs() < 1e-5, "score {score} vs {want}");
    }
    let err = r
        .nearest(&ctx(), "embedding", &[1.0, 2.0], 4, &Filter::All)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "wrong dimension: {err}"
    );
    let err = r
        .nearest(&ctx(), "embedding", &[f32::NAN, 0.0, 1.0], 4, &Filter::All)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = r
        .nearest(&ctx(), "title", &query, 4, &Filter::All)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
