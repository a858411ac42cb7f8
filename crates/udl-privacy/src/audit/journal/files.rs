//! Where journals live on disk: `<dir>/<journal id>/`, holding a `lock` file (locked by the
//! process that appends to the journal, for as long as it lives) and segments named by the
//! position of their first line (`00000000000000000001.jnl`). Directories are 0700, files 0600:
//! an entry names a patient. A segment is filled with zeros ahead of its lines (see
//! [`grow`]), so its lines end where its zeros begin. Reading a journal back finds a torn tail
//! (the last line cut short by a crash mid-write) and the first line that breaks the chain.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::line::JournalLine;

/// The name of the lock file in a journal's directory.
const LOCK: &str = "lock";
/// The extension of a segment file.
const SEGMENT: &str = "jnl";
/// The name prefix of a journal's directory while it is being made.
pub(crate) const UNBORN: &str = ".new-";

/// The directory of journal `id` under `root`.
pub(crate) fn journal_dir(root: &Path, id: Uuid) -> PathBuf {
    root.join(id.to_string())
}

/// The segment of `dir` whose first line is at position `first`.
pub(crate) fn segment_path(dir: &Path, first: i64) -> PathBuf {
    dir.join(format!("{first:020}.{SEGMENT}"))
}

/// Makes `dir` (0700) and its parents, and syncs its parent so the new entry survives a crash.
pub(crate) fn make_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    sync_parent(dir)
}

/// Syncs the directory holding `path`, which makes a file just created there durable.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// Creates a new, empty segment (0600) for writing; fails if it exists.
pub(crate) fn create_segment(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    sync_parent(path)?;
    Ok(file)
}

/// Writes `bytes` zeros to `segment` at `from`, durably. Lines are then written over zeros
/// already on disk, so syncing them changes no file size and no block allocation: one
/// `fdatasync` writes their data and nothing else (about a third less work per sync).
pub(crate) fn grow(segment: &File, from: u64, bytes: u64) -> io::Result<()> {
    segment.write_all_at(&vec![0; bytes as usize], from)?;
    segment.sync_data()
}

/// The lock of journal `dir`, taken: `None` when another live process holds it.
pub(crate) fn try_lock(dir: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(LOCK))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The directories directly under `root`, by name; none when `root` does not exist.
fn subdirectories(root: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let (Some(name), true) = (entry.file_name().to_str(), entry.file_type()?.is_dir()) {
            found.push((name.to_owned(), entry.path()));
        }
    }
    Ok(found)
}

/// The journals under `root`, by id; none when `root` does not exist.
pub(crate) fn journals(root: &Path) -> io::Result<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = subdirectories(root)?
        .into_iter()
        .filter_map(|(name, _)| name.parse().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Directories under `root` of journals whose making was cut short (before they were renamed
/// into place, so they never held a line).
pub(crate) fn unborn_journals(root: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(subdirectories(root)?
        .into_iter()
        .filter(|(name, _)| name.starts_with(UNBORN))
        .map(|(_, path)| path)
        .collect())
}

/// The segments of journal `dir`, in order, with the position of their first line.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT) {
            continue;
        }
        if let Some(first) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
        {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// How a journal's chain stops holding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalProblem {
    /// A line no longer matches its hash, or cannot be read at all (not at the end).
    Altered,
    /// A line does not follow the one before it: lines were removed or reordered.
    Unlinked,
}

/// Where a journal's chain first stops holding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalBreak {
    /// The position the bad line holds, or should hold.
    pub n: i64,
    /// The segment file holding it.
    pub segment: PathBuf,
    /// What is wrong.
    pub problem: JournalProblem,
}

/// A last line cut short: where it starts and how many bytes it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the cut line starts (the file's intact length).
    pub offset: u64,
    /// The bytes of the cut line.
    pub bytes: u64,
}

/// A journal read back: its intact lines, in order, up to the first break.
#[derive(Debug, Default)]
pub(crate) struct JournalRead {
    pub lines: Vec<JournalLine>,
    pub torn: Option<TornTail>,
    pub broken: Option<JournalBreak>,
}

/// Reads every segment of journal `dir`. The first line on disk is trusted to link to what
/// came before it (earlier segments are removed once shipped); every later one is checked. The
/// zeros after a segment's last line are room not yet written. A last line without its newline
/// is a torn tail: its write never finished, so it was never synced and no access waited on it.
pub(crate) fn read_journal(dir: &Path) -> io::Result<JournalRead> {
    let mut read = JournalRead::default();
    let segments = segments(dir)?;
    let last_segment = segments.len().saturating_sub(1);
    let mut expected: Option<(i64, Vec<u8>)> = None;
    for (index, (_, path)) in segments.iter().enumerate() {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        let written = bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        bytes.truncate(written);
        let mut offset = 0usize;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            let next_n = expected.as_ref().map_or(1, |(n, _)| n + 1);
            let broken = |problem| JournalBreak {
                n: next_n,
                segment: path.clone(),
                problem,
            };
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                if index == last_segment {
                    read.torn = Some(TornTail {
                        segment: path.clone(),
                        offset: offset as u64,
                        bytes: rest.len() as u64,
                    });
                } else {
                    read.broken = Some(broken(JournalProblem::Altered));
                }
                return Ok(read);
            };
            let line = match JournalLine::decode(&rest[..end]) {
                Ok(line) => line,
                Err(_) => {
                    read.broken = Some(broken(JournalProblem::Altered));
                    return Ok(read);
                }
            };
            let follows = expected
                .as_ref()
                .is_none_or(|(n, prev)| line.n == n + 1 && line.prev.as_ref() == Some(prev));
            let problem = if !follows {
                Some(JournalProblem::Unlinked)
            } else if !line.intact() {
                Some(JournalProblem::Altered)
            } else {
                None
            };
            if let Some(problem) = problem {
                read.broken = Some(JournalBreak {
                    n: line.n,
                    ..broken(problem)
                });
                return Ok(read);
            }
            expected = Some((line.n, line.hash.clone()));
            read.lines.push(line);
            offset += end + 1;
        }
    }
    Ok(read)
}

/// Cuts a torn tail off, durably.
pub(crate) fn cut(torn: &TornTail) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(&torn.segment)?;
    file.set_len(torn.offset)?;
    file.sync_all()
}
