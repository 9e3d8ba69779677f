//! The walker stage: a depth-first walk that emits ordered events for the assembler and
//! file jobs for the chunkers. Source paths are stored under their full absolute path, so
//! several sources merge into one root without name clashes.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_channel::Sender;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::snapshot::Skipped;
use crate::source::fs::{
    absolute, components, kind_of, node_from_metadata, read_dir_sorted, OwnerNames,
};
use crate::tree::{Node, NodeKind};

/// One step of the walk, in tree order.
pub(super) enum Event {
    /// A directory starts; its children follow until the matching `Leave`.
    Enter(Node),
    /// The innermost open directory is complete.
    Leave,
    /// A non-file, non-directory entry.
    Leaf(Node),
    /// A regular file whose content job has sequence number `.0`.
    File(u64, PathBuf, Node),
    /// Something that could not be read.
    Skipped(Skipped),
}

/// A file for the chunkers.
pub(super) struct FileJob {
    pub seq: u64,
    pub path: PathBuf,
}

/// Makes source paths absolute, checks they exist, sorts them in tree order and drops
/// paths inside other sources (they would be backed up twice).
pub(super) fn prepare_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::Invalid(
            "nothing to back up: give at least one path".into(),
        ));
    }
    let mut out = Vec::new();
    for p in paths {
        let abs = absolute(p)?;
        std::fs::symlink_metadata(&abs).map_err(|e| Error::BadPath {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        out.push(abs);
    }
    out.sort_by_key(|p| components(p));
    out.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for p in out {
        if !kept.iter().any(|k| p.starts_with(k)) {
            kept.push(p);
        }
    }
    Ok(kept)
}

struct Walker<'a> {
    events: &'a Sender<Event>,
    jobs: &'a Sender<FileJob>,
    progress: &'a Progress,
    owners: OwnerNames,
    seq: u64,
}

/// Signals that the rest of the pipeline has stopped.
struct Stopped;

impl Walker<'_> {
    fn emit(&self, ev: Event) -> std::result::Result<(), Stopped> {
        self.events.send(ev).map_err(|_| Stopped)
    }

    fn skip(&self, path: &Path, error: impl ToString) -> std::result::Result<(), Stopped> {
        self.emit(Event::Skipped(Skipped {
            path: path.display().to_string(),
            error: error.to_string(),
        }))
    }

    fn visit(&mut self, path: &Path, name: &[u8]) -> std::result::Result<(), Stopped> {
        let md = match std::fs::symlink_metadata(path) {
            Ok(md) => md,
            Err(e) => return self.skip(path, e),
        };
        let Some(kind) = kind_of(&md) else {
            return Ok(()); // sockets cannot be restored; like tar, we leave them out
        };
        let node = match node_from_metadata(name, path, &md, kind, &self.owners) {
            Ok(n) => n,
            Err(e) => return self.skip(path, e),
        };
        match kind {
            NodeKind::Dir => {
                self.emit(Event::Enter(node))?;
                self.visit_children(path)?;
                self.emit(Event::Leave)
            }
            NodeKind::File => {
                self.seq += 1;
                self.progress.total_items.fetch_add(1, Relaxed);
                self.progress.total_bytes.fetch_add(node.size, Relaxed);
                let job = FileJob {
                    seq: self.seq,
                    path: path.to_path_buf(),
                };
                self.jobs.send(job).map_err(|_| Stopped)?;
                self.emit(Event::File(self.seq, path.to_path_buf(), node))
            }
            _ => self.emit(Event::Leaf(node)),
        }
    }

    fn visit_children(&mut self, dir: &Path) -> std::result::Result<(), Stopped> {
        match read_dir_sorted(dir) {
            Ok(names) => {
                for n in names {
                    self.visit(&dir.join(&n), n.as_bytes())?;
                }
                Ok(())
            }
            Err(e) => self.skip(dir, e),
        }
    }

    /// Opens a directory that is only an ancestor of a source path.
    fn enter_ancestor(&mut self, path: &Path, name: &[u8]) -> std::result::Result<(), Stopped> {
        let node = std::fs::symlink_metadata(path)
            .ok()
            .and_then(|md| node_from_metadata(name, path, &md, NodeKind::Dir, &self.owners).ok())
            .unwrap_or_else(|| Node {
                name: name.to_vec(),
                kind: Some(NodeKind::Dir),
                mode: 0o755,
                ..Node::default()
            });
        self.emit(Event::Enter(node))
    }
}

/// Walks every source; returns when done or when the pipeline stopped.
pub(super) fn walk(
    sources: &[PathBuf],
    events: &Sender<Event>,
    jobs: &Sender<FileJob>,
    progress: &Progress,
) -> Result<()> {
    let mut w = Walker {
        events,
        jobs,
        progress,
        owners: OwnerNames::default(),
        seq: 0,
    };
    let mut open: Vec<Vec<u8>> = Vec::new();
    let run = |w: &mut Walker, open: &mut Vec<Vec<u8>>| -> std::result::Result<(), Stopped> {
        for src in sources {
            let comps = components(src);
            let Some((name, parents)) = comps.split_last() else {
                // The source is "/": its children go straight into the root.
                w.visit_children(Path::new("/"))?;
                continue;
            };
            let common = open.iter().zip(parents).take_while(|(a, b)| a == b).count();
            while open.len() > common {
                open.pop();
                w.emit(Event::Leave)?;
            }
            for (i, comp) in parents.iter().enumerate().skip(common) {
                let p: PathBuf = std::iter::once(Path::new("/").to_path_buf())
                    .chain(
                        parents[..=i]
                            .iter()
                            .map(|c| PathBuf::from(std::ffi::OsStr::from_bytes(c))),
                    )
                    .collect();
                w.enter_ancestor(&p, comp)?;
                open.push(comp.clone());
            }
            w.visit(src, name)?;
        }
        while open.pop().is_some() {
            w.emit(Event::Leave)?;
        }
        Ok(())
    };
    let _ = run(&mut w, &mut open);
    progress.totals_final.store(true, Relaxed);
    Ok(())
}
