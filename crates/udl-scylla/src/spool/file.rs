//! A durable first-in, first-out queue of JSON entries in one directory: `entries.jsonl`
//! (appended to, each append synced to disk before it is acknowledged), `cursor` (how far
//! replay got, replaced atomically) and `lock` (held by the one process using the spool).
//!
//! A crash mid-append leaves at most a partial last line, which was never acknowledged and is
//! cut off when the spool is opened again. A crash mid-replay replays the unconfirmed entries
//! again, so entries must be idempotent (analytics rows are upserts by key).

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value as Json;
use udl_core::{Error, ErrorKind, Result, StoreKind};

fn io_error(action: &'static str, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("the analytics spool could not {action}: {}", e.kind()),
    )
    .with_store(StoreKind::SCYLLA)
    .with_operation("spool")
    .temporary(false)
}

struct State {
    entries: File,
    /// Bytes of `entries` replayed and confirmed.
    cursor: u64,
    /// Bytes of `entries` holding whole lines.
    end: u64,
    /// Entries not yet replayed.
    depth: u64,
}

/// The spool directory of one process.
pub struct SpoolFile {
    dir: PathBuf,
    state: Mutex<State>,
    _lock: File,
}

fn open_rw(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Only this service's user may read what waits here.
        options.mode(0o600);
    }
    options.open(path)
}

impl SpoolFile {
    /// Opens (creating if needed) the spool in `dir`, taking its lock.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create its directory", &e))?;
        let lock = open_rw(&dir.join("lock")).map_err(|e| io_error("open its lock", &e))?;
        lock.try_lock().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                "the analytics spool directory is in use by another process (give each process its own scylla.spool_dir)",
            )
            .with_store(StoreKind::SCYLLA)
            .with_operation("spool")
        })?;
        let mut entries =
            open_rw(&dir.join("entries.jsonl")).map_err(|e| io_error("open its file", &e))?;
        let cursor = std::fs::read_to_string(dir.join("cursor"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0);
        // Whole lines only: a partial last line was never acknowledged.
        let (mut end, mut depth, mut position) = (0u64, 0u64, 0u64);
        let mut reader = BufReader::new(&entries);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| io_error("read its file", &e))?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            position += read as u64;
            end = position;
            if position > cursor {
                depth += 1;
            }
        }
        entries
            .set_len(end)
            .and_then(|()| entries.seek(SeekFrom::End(0)).map(drop))
            .map_err(|e| io_error("repair its file", &e))?;
        Ok(SpoolFile {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                entries,
                cursor: cursor.min(end),
                end,
                depth,
            }),
            _lock: lock,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries waiting for replay.
    pub fn depth(&self) -> u64 {
        self.state().depth
    }

    /// Appends `entry` and syncs it to disk; only then is it acknowledged.
    pub fn append(&self, entry: &Json) -> Result<()> {
        let mut line = entry.to_string().into_bytes();
        line.push(b'\n');
        let mut state = self.state();
        let written = state
            .entries
            .write_all(&line)
            .and_then(|()| state.entries.sync_data());
        if let Err(e) = written {
            // Cut back to the last whole line so a retry does not follow a fragment.
            let end = state.end;
            let _ = state.entries.set_len(end);
            let _ = state.entries.seek(SeekFrom::End(0));
            return Err(io_error("write an entry", &e));
        }
        state.end += line.len() as u64;
        state.depth += 1;
        Ok(())
    }

    /// Up to `max` entries after the cursor, oldest first, each with the offset just past it.
    pub fn peek(&self, max: usize) -> Result<Vec<(u64, Json)>> {
        let (cursor, end) = {
            let state = self.state();
            (state.cursor, state.end)
        };
        let mut file = File::open(self.dir.join("entries.jsonl"))
            .map_err(|e| io_error("read its file", &e))?;
        file.seek(SeekFrom::Start(cursor))
            .map_err(|e| io_error("read its file", &e))?;
        let mut reader = BufReader::new(file);
        let (mut offset, mut found, mut line) = (cursor, Vec::new(), String::new());
        while found.len() < max && offset < end {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .map_err(|e| io_error("read its file", &e))?;
            if read == 0 {
                break;
            }
            offset += read as u64;
            let entry = serde_json::from_str(line.trim_end()).map_err(|_| {
                Error::new(
                    ErrorKind::DataCorruption,
                    "an analytics spool entry is not valid JSON",
                )
                .with_store(StoreKind::SCYLLA)
                .with_operation("spool")
            })?;
            found.push((offset, entry));
        }
        Ok(found)
    }

    /// Marks every entry before `offset` as replayed; an empty spool starts over at zero bytes.
    pub fn confirm(&self, offset: u64, entries: u64) -> Result<()> {
        let mut state = self.state();
        state.depth = state.depth.saturating_sub(entries);
        state.cursor = offset.min(state.end);
        if state.cursor < state.end {
            return self.record_cursor(state.cursor);
        }
        // The cursor goes back to zero before the file is emptied: a crash in between replays
        // entries again (harmless) instead of skipping entries appended later.
        self.record_cursor(0)?;
        state
            .entries
            .set_len(0)
            .and_then(|()| state.entries.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| state.entries.sync_data())
            .map_err(|e| io_error("truncate its file", &e))?;
        state.cursor = 0;
        state.end = 0;
        Ok(())
    }

    /// Written beside and renamed over: a crash leaves the old cursor or the new one.
    fn record_cursor(&self, cursor: u64) -> Result<()> {
        let temporary = self.dir.join("cursor.new");
        std::fs::write(&temporary, cursor.to_string())
            .and_then(|()| File::open(&temporary)?.sync_all())
            .and_then(|()| std::fs::rename(&temporary, self.dir.join("cursor")))
            .map_err(|e| io_error("record its progress", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("udl-spool-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn entries_come_back_in_order_and_confirmed_ones_never_again() {
        let dir = scratch("order");
        let spool = SpoolFile::open(&dir).unwrap();
        for n in 0..5 {
            spool.append(&json!({ "n": n })).unwrap();
        }
        assert_eq!(spool.depth(), 5);
        let first = spool.peek(2).unwrap();
        assert_eq!(first[0].1, json!({ "n": 0 }));
        assert_eq!(first[1].1, json!({ "n": 1 }));
        spool.confirm(first[1].0, 2).unwrap();
        assert_eq!(spool.depth(), 3);
        drop(spool);

        let reopened = SpoolFile::open(&dir).unwrap();
        assert_eq!(reopened.depth(), 3, "the cursor survives a restart");
        let rest = reopened.peek(10).unwrap();
        let ns: Vec<&Json> = rest.iter().map(|(_, e)| &e["n"]).collect();
        assert_eq!(ns, [&json!(2), &json!(3), &json!(4)]);
        reopened.confirm(rest[2].0, 3).unwrap();
        assert_eq!(reopened.depth(), 0);
        assert_eq!(
            std::fs::metadata(dir.join("entries.jsonl")).unwrap().len(),
            0
        );
        reopened.append(&json!({ "n": 5 })).unwrap();
        assert_eq!(reopened.peek(10).unwrap()[0].1, json!({ "n": 5 }));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_off_on_open() {
        let dir = scratch("torn");
        let spool = SpoolFile::open(&dir).unwrap();
        spool.append(&json!({ "n": 0 })).unwrap();
        drop(spool);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join("entries.jsonl"))
            .unwrap();
        file.write_all(br#"{"n": 1, "half"#).unwrap();
        drop(file);

        let reopened = SpoolFile::open(&dir).unwrap();
        assert_eq!(reopened.depth(), 1);
        reopened.append(&json!({ "n": 2 })).unwrap();
        let entries: Vec<Json> = reopened
            .peek(10)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(entries, [json!({ "n": 0 }), json!({ "n": 2 })]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn one_process_per_spool_directory() {
        let dir = scratch("lock");
        let _first = SpoolFile::open(&dir).unwrap();
        let second = SpoolFile::open(&dir).err().expect("the lock is held");
        assert_eq!(second.kind(), ErrorKind::Config);
        assert!(second.to_string().contains("spool_dir"), "{second}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
