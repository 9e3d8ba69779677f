//! The walk's starting points: the source paths given (in tree order, under their
//! ancestor directories) and the virtual sources (databases) after them.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use super::{Event, FileJob, Stopped, Walker};
use crate::dirfd;
use crate::error::{Error, Result};
use crate::ops::snapshot::parent::PrevDir;
use crate::source::fs::{absolute, components, node_from_meta};
use crate::source::VirtualSource;
use crate::tree::{Node, NodeKind};

/// Makes source paths absolute, checks they exist, sorts them in tree order and drops
/// paths inside other sources (they would be backed up twice).
pub(in crate::ops::snapshot) fn prepare_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
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

impl Walker<'_> {
    /// Walks every source path, in tree order, under its ancestors (each entered once,
    /// with the parent snapshot's version of it), then the virtual sources.
    pub(super) fn walk_sources(&mut self, sources: &[PathBuf]) -> std::result::Result<(), Stopped> {
        let w = self;
        // Open ancestor directories, each with the parent snapshot's version of it.
        let mut open: Vec<(Vec<u8>, Option<PrevDir>)> = Vec::new();
        let root_prev = w.ctx.parent_root.clone();
        for src in sources {
            let comps = components(src);
            let Some((name, parents)) = comps.split_last() else {
                // The source is "/": its children go straight into the root.
                match dirfd::open_dir(Path::new("/")) {
                    Ok(root) => {
                        w.root_dev = dirfd::fstat(&root).map_or(0, |m| m.dev);
                        w.visit_children(root.as_fd(), Path::new("/"), root_prev.as_ref())?;
                    }
                    Err(e) => w.skip(src, e)?,
                }
                continue;
            };
            let common = open
                .iter()
                .zip(parents)
                .take_while(|((a, _), b)| a == *b)
                .count();
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
                let up = open.last().map_or(root_prev.as_ref(), |(_, p)| p.as_ref());
                let prev = up.and_then(|u| u.subdir(w.ctx.repo, comp));
                w.enter_ancestor(&p, comp, prev.clone())?;
                open.push((comp.clone(), prev));
            }
            let up = open.last().map_or(root_prev.as_ref(), |(_, p)| p.as_ref());
            let up = up.cloned();
            w.visit_source(src, name, up.as_ref())?;
        }
        while open.pop().is_some() {
            w.emit(Event::Leave)?;
        }
        for v in w.ctx.virtual_sources {
            w.visit_virtual(*v, root_prev.as_ref())?;
        }
        w.flush()
    }

    /// Emits a virtual source's entries under its root directory. Their content is read
    /// (a database has no mtime to trust; dedup keeps unchanged ones free) unless the
    /// source vouches for the parent's entry (`reuse`: MongoDB, from the oplog).
    fn visit_virtual(
        &mut self,
        v: &dyn VirtualSource,
        prev_root: Option<&PrevDir>,
    ) -> std::result::Result<(), Stopped> {
        let dir_node = |name: &str| Node {
            name: name.as_bytes().to_vec(),
            kind: Some(NodeKind::Dir),
            mode: 0o700,
            mtime: self.ctx.time,
            ..Node::default()
        };
        let root_prev = prev_root.and_then(|p| p.subdir(self.ctx.repo, v.root().as_bytes()));
        self.emit(Event::Enter(dir_node(v.root()), root_prev.clone()))?;
        let mut open: Vec<(String, Option<PrevDir>)> = Vec::new();
        for e in v.entries() {
            let common = open
                .iter()
                .zip(&e.dirs)
                .take_while(|((a, _), b)| a == *b)
                .count();
            while open.len() > common {
                open.pop();
                self.emit(Event::Leave)?;
            }
            for d in &e.dirs[common..] {
                let up = open.last().map_or(root_prev.as_ref(), |(_, p)| p.as_ref());
                let prev = up.and_then(|u| u.subdir(self.ctx.repo, d.as_bytes()));
                self.emit(Event::Enter(dir_node(d), prev.clone()))?;
                open.push((d.clone(), prev));
            }
            let up = open.last().map_or(root_prev.as_ref(), |(_, p)| p.as_ref());
            let existed = up.and_then(|u| u.get(e.name.as_bytes())).is_some();
            let mut path = PathBuf::from("/");
            path.push(v.root());
            path.extend(&e.dirs);
            path.push(&e.name);
            self.progress.total_items.fetch_add(1, Relaxed);
            let node = Node {
                name: e.name.as_bytes().to_vec(),
                kind: Some(NodeKind::File),
                mode: 0o600,
                mtime: e.mtime.unwrap_or(self.ctx.time),
                ..Node::default()
            };
            if let Some(prev) = e.reuse {
                self.progress.done(1, 0);
                self.emit(Event::Unchanged(Node {
                    size: prev.size,
                    mtime: prev.mtime,
                    content: prev.content,
                    ..node
                }))?;
                continue;
            }
            self.seq += 1;
            let job = FileJob {
                seq: self.seq,
                file: None,
                open: Some(e.open),
                small_chunks: e.small_chunks,
                size_hint: 0,
            };
            self.queue(job, u64::MAX)?;
            self.emit(Event::File(self.seq, path, node, existed))?;
        }
        while open.pop().is_some() {
            self.emit(Event::Leave)?;
        }
        self.emit(Event::Leave)
    }

    /// Opens a directory that is only an ancestor of a source path.
    fn enter_ancestor(
        &mut self,
        path: &Path,
        name: &[u8],
        prev: Option<PrevDir>,
    ) -> std::result::Result<(), Stopped> {
        let parent = path.parent().unwrap_or(Path::new("/"));
        let node = dirfd::open_dir(parent)
            .ok()
            .and_then(|d| {
                let st = dirfd::lstat_at(d.as_fd(), OsStr::from_bytes(name)).ok()?;
                node_from_meta(name, d.as_fd(), &st, NodeKind::Dir, &self.owners).ok()
            })
            .unwrap_or_else(|| Node {
                name: name.to_vec(),
                kind: Some(NodeKind::Dir),
                mode: 0o755,
                ..Node::default()
            });
        self.emit(Event::Enter(node, prev))
    }

    /// Visits one source path given on the command line: its parent directory is opened
    /// by path (the user named it), everything below through descriptors.
    fn visit_source(
        &mut self,
        src: &Path,
        name: &[u8],
        prev: Option<&PrevDir>,
    ) -> std::result::Result<(), Stopped> {
        let parent = src.parent().unwrap_or(Path::new("/"));
        let dir = match dirfd::open_dir(parent) {
            Ok(d) => d,
            Err(e) => return self.skip(src, e),
        };
        self.root_dev = dirfd::lstat_at(dir.as_fd(), OsStr::from_bytes(name)).map_or(0, |m| m.dev);
        self.visit(dir.as_fd(), src, name, prev)
    }
}
