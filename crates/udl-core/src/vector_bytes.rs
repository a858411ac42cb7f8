//! The compact byte form of a vector: its components as little-endian `f32`s, back to back.
//! Caches keep embeddings this way; both directions compile to plain copies.

/// Appends `vector`'s components to `out`.
pub fn put_vector(out: &mut Vec<u8>, vector: &[f32]) {
    let start = out.len();
    out.resize(start + vector.len() * 4, 0);
    let (slots, _) = out[start..].as_chunks_mut::<4>();
    for (slot, x) in slots.iter_mut().zip(vector) {
        *slot = x.to_le_bytes();
    }
}

/// The components in `bytes`, or `None` when its length is not a whole number of them.
pub fn read_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    let (components, rest) = bytes.as_chunks::<4>();
    rest.is_empty()
        .then(|| components.iter().map(|c| f32::from_le_bytes(*c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_partial_components() {
        let v = [0.5_f32, -1.25, f32::MAX, 0.0];
        let mut bytes = vec![9];
        put_vector(&mut bytes, &v);
        assert_eq!(bytes.len(), 1 + 16);
        assert_eq!(read_vector(&bytes[1..]), Some(v.to_vec()));
        assert_eq!(read_vector(&bytes[1..16]), None);
    }
}
