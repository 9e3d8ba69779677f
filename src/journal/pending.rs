//! This host's journal: records whose repository could not be reached, one JSON file each
//! under `<state>/journal/<location digest>/`, written to the repository before the next
//! record that reaches it. They hold no secret (see the module above), so plain files
//! (mode 0600) are enough.

use std::path::{Path, PathBuf};

use super::{Record, Sink};
use crate::error::{Error, Result};

/// The records waiting for one repository location.
pub struct Pending {
    dir: PathBuf,
}

impl Pending {
    /// The journal for `location` under `state_root`.
    pub fn for_location(state_root: &Path, location: &str) -> Self {
        let digest = blake3::hash(location.as_bytes()).to_hex();
        Self {
            dir: state_root.join("journal").join(&digest.as_str()[..32]),
        }
    }

    /// Keeps `rec` until the repository can be reached.
    pub fn add(&self, rec: &Record) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let path = self.dir.join(format!("{}.json", rec.id));
        let body = serde_json::to_vec(rec)
            .map_err(|e| Error::Internal(format!("encoding a log record: {e}")))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&body).and_then(|()| f.sync_all()))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Writes every waiting record to `sink`, oldest first, removing each once written;
    /// returns how many.
    pub fn flush(&self, sink: &Sink) -> Result<usize> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(d) => d
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(format!("reading {}", self.dir.display()), e)),
        };
        files.sort();
        let mut n = 0;
        for f in files {
            let rec: Option<Record> = std::fs::read(&f)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(rec) = rec {
                sink.write(&rec)?;
                n += 1;
            }
            // An unreadable file is dropped rather than blocking every later record.
            let _ = std::fs::remove_file(&f);
        }
        Ok(n)
    }
}

/// Writes `rec` to `sink` (after whatever waited for that repository), or, without a
/// sink or when writing fails, keeps it in this host's journal. Returns whether it
/// reached the repository.
pub fn record(
    state_root: &Path,
    location: &str,
    sink: Option<&Sink>,
    rec: &Record,
) -> Result<bool> {
    let pending = Pending::for_location(state_root, location);
    if let Some(s) = sink {
        // The repository this operation ran on is gone: its record, sealed with that
        // repository's key, would be unreadable noise in whatever is there now, and kept
        // here it would be written there later as if it had run on it.
        if let Ok(false) = s.same_repository() {
            tracing::warn!(
                "the repository at {location} was removed or replaced while this operation \
                 ran; its operation-log record is dropped"
            );
            return Ok(false);
        }
        match pending.flush(s).and_then(|_| s.write(rec)) {
            Ok(()) => return Ok(true),
            Err(e) => {
                tracing::warn!("the operation log could not be written ({e}); kept on this host")
            }
        }
    }
    pending.add(rec)?;
    Ok(false)
}
