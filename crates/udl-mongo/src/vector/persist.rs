//! Saving a vector index to a local directory and opening it again, so a restart reads a
//! graph instead of rebuilding it from every vector of the collection.
//!
//! One directory per (database, collection, field) holds `meta.json` (format, keys, digests,
//! change feed position, checksums) and the graph `hnsw_rs` dumped into a generation
//! directory of its own. A save writes a new generation, then replaces `meta.json` by rename,
//! then removes older generations: a crash at any point leaves the last complete save. A
//! save that does not match its checksums, format or dimension is not opened (the index is
//! rebuilt). A `lock` file serializes saves, and keeps a save from removing the generation
//! an opening reads, across processes sharing the directory. Directories are 0700 and files
//! 0600: the index holds the field's vectors as they are stored in MongoDB.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hnsw_rs::api::AnnT as _;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::index::{Live, Slots, UnitDot, VectorIndex};

/// Bumped whenever what is saved, or how the graph is built, changes.
const FORMAT: u32 = 3;
const META: &str = "meta.json";
const LOCK: &str = "lock";
const DUMP: &str = "index";

#[derive(Serialize, Deserialize)]
struct Meta {
    format: u32,
    /// The generation directory holding the graph.
    generation: String,
    /// The name `hnsw_rs` gave the dump inside it.
    basename: String,
    dimension: usize,
    /// Per point of the graph: its key and vector digest, or `None` for a tombstone.
    points: Vec<Option<(String, u64)>>,
    /// The change feed position (hex of the resume point bytes) the save reflects.
    position: String,
    graph_sha256: String,
    data_sha256: String,
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
    if index.graph.get_nb_point() == 0 {
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
    let (basename, points, position) = {
        let _alone = index.changing.write().unwrap_or_else(|p| p.into_inner());
        let Some(position) = index.position() else {
            fs::remove_dir_all(&target)?;
            return Ok(());
        };
        let basename = index
            .graph
            .file_dump(&target, DUMP)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let slots = index.slots.read().unwrap_or_else(|p| p.into_inner());
        (basename, points_of(&slots), position)
    };
    let [graph, data] = dump_files(&target, &basename);
    let meta = Meta {
        format: FORMAT,
        generation: generation.clone(),
        dimension: index.dimension,
        points,
        position: hex::encode(position),
        graph_sha256: sealed_checksum(&graph)?,
        data_sha256: sealed_checksum(&data)?,
        basename,
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
    let [graph_file, data_file] = dump_files(&target, &meta.basename);
    for (file, expected) in [
        (&graph_file, &meta.graph_sha256),
        (&data_file, &meta.data_sha256),
    ] {
        let actual = checksum(file).map_err(|e| format!("cannot read the saved graph: {e}"))?;
        if &actual != expected {
            return Err("the saved graph does not match its checksum".into());
        }
    }
    let position = hex::decode(&meta.position).map_err(|_| "malformed position".to_owned())?;
    // The graph borrows its loader; one small loader per opened index lives as long as the
    // process (the loaded points are owned by the graph).
    let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&target, &meta.basename)));
    let graph: Hnsw<'static, f32, UnitDot> = loader
        .load_hnsw()
        .map_err(|e| format!("cannot load the saved graph: {e}"))?;
    if graph.get_nb_point() != meta.points.len()
        || graph.get_point_indexation().get_data_dimension() != meta.dimension
    {
        return Err("the saved graph does not match its keys".into());
    }
    let mut slots = Slots::default();
    for (slot, point) in meta.points.into_iter().enumerate() {
        slots
            .key_of
            .push(point.as_ref().map(|(key, _)| key.clone()));
        if let Some((key, digest)) = point {
            slots.live.insert(key, Live { slot, digest });
        }
    }
    let mut index = VectorIndex::from_parts(meta.dimension, graph, slots, Some(position));
    index.opened = true;
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

fn dump_files(dir: &Path, basename: &str) -> [PathBuf; 2] {
    ["graph", "data"].map(|part| dir.join(format!("{basename}.hnsw.{part}")))
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

    fn saved_index(dir: &Path) -> VectorIndex {
        let index = VectorIndex::new(3, 10);
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
        let dir = tempdir("open");
        saved_index(&dir);
        let opened = open(&dir).unwrap().expect("saved");
        assert_eq!(opened.len(), 2);
        assert_eq!(opened.tombstones(), 1);
        assert_eq!(opened.position(), Some(vec![7, 8, 9]));
        assert_eq!(opened.search(&[1.0, 0.1, 0.0], 1, 10)[0].0, "a");
        opened.insert_many(vec![("a".into(), vec![1.0, 0.0, 0.0])]);
        assert_eq!(opened.tombstones(), 1, "digests survive the save");
        opened.insert_many(vec![("d".into(), vec![0.5, 0.5, 0.0])]);
        assert_eq!(opened.len(), 3, "an opened index takes new vectors");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_second_save_replaces_the_first_and_a_damaged_one_is_refused() {
        let dir = tempdir("replace");
        let index = saved_index(&dir);
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
        let [_, data] = dump_files(&dir.join(&meta.generation), &meta.basename);
        let mut bytes = fs::read(&data).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&data, bytes).unwrap();
        let refused = open(&dir).err().expect("damaged");
        assert!(refused.contains("checksum"), "{refused}");
        fs::remove_dir_all(dir).unwrap();
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
