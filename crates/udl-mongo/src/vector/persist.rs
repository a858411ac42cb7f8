//! Saving a vector index to a local directory and opening it again, so a restart reads the
//! index instead of rebuilding it from every vector of the collection.
//!
//! One directory per (database, collection, field) holds `meta.json` (format, kind, keys,
//! digests, change feed position, checksums) and, in a generation directory of its own,
//! the points: a scan's unit vectors (`vectors.f32`, little-endian, slot after slot; the
//! int8 codes are recomputed) or the graph `hnsw_rs` dumped. A save writes a new
//! generation, then replaces `meta.json` by rename, then removes older generations: a crash
//! at any point leaves the last complete save. A
//! save that does not match its checksums, format or dimension is not opened (the index is
//! rebuilt). A `lock` file serializes saves, and keeps a save from removing the generation
//! an opening reads, across processes sharing the directory. Directories are 0700 and files
//! 0600: the index holds the field's vectors as they are stored in MongoDB.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hnsw_rs::api::AnnT as _;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::index::{Live, Points, Slots, UnitDot, VectorIndex};
use super::scan::Scan;
use super::{read, write};

/// Bumped whenever what is saved, or how the graph is built, changes.
const FORMAT: u32 = 4;
const META: &str = "meta.json";
const LOCK: &str = "lock";
const DUMP: &str = "index";
const VECTORS: &str = "vectors.f32";

#[derive(Serialize, Deserialize)]
struct Meta {
    format: u32,
    /// The generation directory holding the points.
    generation: String,
    kind: Kind,
    dimension: usize,
    /// Per point: its key and vector digest, or `None` for a tombstone.
    points: Vec<Option<(String, u64)>>,
    /// The change feed position (hex of the resume point bytes) the save reflects.
    position: String,
    /// SHA-256 of each file of the generation, by name.
    files: Vec<(String, String)>,
    /// The graph's calibrated search `ef`.
    ef: usize,
}

/// What the generation holds.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Kind {
    Scan,
    /// `hnsw_rs`'s dump, under the name it chose.
    Graph {
        basename: String,
    },
}

impl VectorIndex {
    /// Saves the index into `dir` (created if missing), as `mongo.vector_index_dir` does. An
    /// empty index, or one with no change feed position, is not saved.
    pub fn save_to(&self, dir: &Path) -> io::Result<()> {
        save(self, dir)
    }

    /// The index saved in `dir`, `Ok(None)` when nothing was saved there, or why it cannot be
    /// opened (damaged, another format).
    pub fn open_from(dir: &Path) -> Result<Option<Self>, String> {
        open(dir)
    }
}

/// Saves `index` into `dir` (created if missing). An empty index, or one with no change feed
/// position (it could not be brought up to date when opened), is not saved.
pub(super) fn save(index: &VectorIndex, dir: &Path) -> io::Result<()> {
    if read(&index.slots).key_of.is_empty() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let lock = lock_file(dir)?;
    lock.lock()?;
    let generation = format!(
        "gen-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let target = dir.join(&generation);
    DirBuilder::new().mode(0o700).create(&target)?;
    let (kind, points, position) = {
        let _alone = write(&index.changing);
        let Some(position) = index.position() else {
            fs::remove_dir_all(&target)?;
            return Ok(());
        };
        let kind = save_points(index, &target)?;
        let slots = read(&index.slots);
        (kind, points_of(&slots), position)
    };
    let files = files_of(&target, &kind)
        .iter()
        .map(|file| {
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok((name, sealed_checksum(file)?))
        })
        .collect::<io::Result<_>>()?;
    let meta = Meta {
        format: FORMAT,
        generation: generation.clone(),
        kind,
        dimension: index.dimension,
        points,
        position: hex::encode(position),
        files,
        ef: index.ef(),
    };
    let json = serde_json::to_vec(&meta).map_err(io::Error::other)?;
    let unfinished = dir.join(format!("{META}.part"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&unfinished)?;
    file.write_all(&json)?;
    file.sync_all()?;
    fs::rename(&unfinished, dir.join(META))?;
    File::open(dir)?.sync_all()?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("gen-") && name != generation {
            fs::remove_dir_all(&path)?;
        }
    }
    Ok(())
}

/// The index saved in `dir`, `Ok(None)` when nothing was saved there, or why the save cannot
/// be opened.
pub(super) fn open(dir: &Path) -> Result<Option<VectorIndex>, String> {
    if !dir.join(META).exists() {
        return Ok(None);
    }
    let lock = lock_file(dir).map_err(|e| format!("cannot open its lock: {e}"))?;
    lock.lock_shared()
        .map_err(|e| format!("cannot take its lock: {e}"))?;
    let json = match fs::read(dir.join(META)) {
        Ok(json) => json,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {META}: {e}")),
    };
    let meta: Meta = serde_json::from_slice(&json).map_err(|e| format!("{META}: {e}"))?;
    if meta.format != FORMAT {
        return Err(format!("saved in format {}, not {FORMAT}", meta.format));
    }
    let target = dir.join(&meta.generation);
    let expected = files_of(&target, &meta.kind);
    if expected.len() != meta.files.len() {
        return Err("the save does not list its files".into());
    }
    for (file, (_, sha256)) in expected.iter().zip(&meta.files) {
        let actual = checksum(file).map_err(|e| format!("cannot read the saved index: {e}"))?;
        if &actual != sha256 {
            return Err("the saved index does not match its checksum".into());
        }
    }
    let position = hex::decode(&meta.position).map_err(|_| "malformed position".to_owned())?;
    let points = open_points(&target, &meta)?;
    let mut slots = Slots::default();
    for (slot, point) in meta.points.into_iter().enumerate() {
        slots
            .key_of
            .push(point.as_ref().map(|(key, _)| key.clone()));
        if let Some((key, digest)) = point {
            slots.live.insert(key, Live { slot, digest });
        }
    }
    let mut index = VectorIndex::from_parts(meta.dimension, points, slots, Some(position));
    index.opened = true;
    index.set_ef(meta.ef);
    Ok(Some(index))
}

fn lock_file(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(LOCK))
}

fn points_of(slots: &Slots) -> Vec<Option<(String, u64)>> {
    slots
        .key_of
        .iter()
        .map(|key| {
            let key = key.as_ref()?;
            Some((key.clone(), slots.live.get(key)?.digest))
        })
        .collect()
}

/// Writes the index's points into `target`.
fn save_points(index: &VectorIndex, target: &Path) -> io::Result<Kind> {
    match &index.points {
        Points::Scan(scan) => {
            let scan = read(scan);
            let bytes: Vec<u8> = scan.units().iter().flat_map(|x| x.to_le_bytes()).collect();
            fs::write(target.join(VECTORS), bytes)?;
            Ok(Kind::Scan)
        }
        Points::Graph(graph) => {
            let basename = graph
                .file_dump(target, DUMP)
                .map_err(|e| io::Error::other(e.to_string()))?;
            Ok(Kind::Graph { basename })
        }
    }
}

/// The points saved in `target`, checked against the keys of `meta`.
fn open_points(target: &Path, meta: &Meta) -> Result<Points, String> {
    let points = match &meta.kind {
        Kind::Scan => {
            let bytes = fs::read(target.join(VECTORS))
                .map_err(|e| format!("cannot read the saved vectors: {e}"))?;
            let units: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if units.len() != meta.points.len() * meta.dimension {
                return Err("the saved vectors do not match their keys".into());
            }
            Points::Scan(RwLock::new(Scan::from_units(meta.dimension, units)))
        }
        Kind::Graph { basename } => {
            // The graph borrows its loader; one small loader per opened index lives as long
            // as the process (the loaded points are owned by the graph).
            let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(target, basename)));
            let graph: Hnsw<'static, f32, UnitDot> = loader
                .load_hnsw()
                .map_err(|e| format!("cannot load the saved graph: {e}"))?;
            if graph.get_nb_point() != meta.points.len()
                || graph.get_point_indexation().get_data_dimension() != meta.dimension
            {
                return Err("the saved graph does not match its keys".into());
            }
            Points::Graph(graph)
        }
    };
    Ok(points)
}

/// The files a generation of `kind` holds.
fn files_of(target: &Path, kind: &Kind) -> Vec<PathBuf> {
    match kind {
        Kind::Scan => vec![target.join(VECTORS)],
        Kind::Graph { basename } => ["graph", "data"]
            .iter()
            .map(|part| target.join(format!("{basename}.hnsw.{part}")))
            .collect(),
    }
}

/// Makes `file` private and durable, and returns its checksum.
fn sealed_checksum(file: &Path) -> io::Result<String> {
    fs::set_permissions(file, fs::Permissions::from_mode(0o600))?;
    File::open(file)?.sync_all()?;
    checksum(file)
}

fn checksum(file: &Path) -> io::Result<String> {
    let mut reader = File::open(file)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kinds of index, made empty for three dimensions.
    const KINDS: [fn(usize, usize) -> VectorIndex; 2] = [VectorIndex::scan, VectorIndex::graph];

    fn saved_index(dir: &Path, empty: fn(usize, usize) -> VectorIndex) -> VectorIndex {
        let index = empty(3, 10);
        index.insert_many(vec![
            ("a".into(), vec![1.0, 0.0, 0.0]),
            ("b".into(), vec![0.0, 1.0, 0.0]),
            ("c".into(), vec![0.0, 0.0, 1.0]),
        ]);
        index.remove("c");
        index.advance_to(vec![7, 8, 9]);
        save(&index, dir).unwrap();
        index
    }

    #[test]
    fn a_saved_index_opens_with_its_keys_tombstones_and_position() {
        for empty in KINDS {
            let dir = tempdir("open");
            let saved = saved_index(&dir, empty);
            let opened = open(&dir).unwrap().expect("saved");
            assert_eq!(opened.is_graph(), saved.is_graph());
            assert_eq!(opened.len(), 2);
            assert_eq!(opened.tombstones(), 1);
            assert_eq!(opened.position(), Some(vec![7, 8, 9]));
            assert_eq!(opened.search(&[1.0, 0.1, 0.0], 1, 10)[0].0, "a");
            opened.insert_many(vec![("a".into(), vec![1.0, 0.0, 0.0])]);
            assert_eq!(opened.tombstones(), 1, "digests survive the save");
            opened.insert_many(vec![("d".into(), vec![0.5, 0.5, 0.0])]);
            assert_eq!(opened.len(), 3, "an opened index takes new vectors");
            assert_eq!(opened.search(&[0.5, 0.5, 0.0], 1, 10)[0].0, "d");
            fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn a_second_save_replaces_the_first_and_a_damaged_one_is_refused() {
        for empty in KINDS {
            let dir = tempdir("replace");
            let index = saved_index(&dir, empty);
            index.advance_to(vec![10]);
            save(&index, &dir).unwrap();
            let generations = fs::read_dir(&dir)
                .unwrap()
                .filter(|e| {
                    let e = e.as_ref().unwrap();
                    e.file_name().to_string_lossy().starts_with("gen-")
                })
                .count();
            assert_eq!(generations, 1, "the older generation is removed");
            assert_eq!(open(&dir).unwrap().unwrap().position(), Some(vec![10]));
            let mode = fs::metadata(dir.join(META)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);

            let meta: Meta = serde_json::from_slice(&fs::read(dir.join(META)).unwrap()).unwrap();
            let saved = dir.join(&meta.generation).join(&meta.files[0].0);
            let mut bytes = fs::read(&saved).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            fs::write(&saved, bytes).unwrap();
            let refused = open(&dir).err().expect("damaged");
            assert!(refused.contains("checksum"), "{refused}");
            fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn nothing_saved_opens_as_none() {
        let dir = tempdir("none");
        assert!(open(&dir).unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    fn tempdir(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "udl-vector-{what}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
