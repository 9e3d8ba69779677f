//! Subdirectories opened ahead of their turn, several at once.
//!
//! The walker visits entries in order, one at a time; for a directory it opens it, lists
//! it, loads the parent snapshot's version of it and, when that version has as many
//! entries, `lstat`s them all to see whether the directory is unchanged. Between two
//! snapshots that is most of a walk, and done one directory after another it keeps one
//! core busy. A [`Probe`] does that work for the next few sibling directories on rayon's
//! threads; the walker then takes each in its turn, exactly as if it had just done the
//! work itself (the same checks follow). At most [`WINDOW`] probes are held at once.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::parent::PrevDir;
use super::walk::{stat_all, STAT_SLICE};
use crate::dirfd::{self, Meta};
use crate::repository::Repository;
use crate::source::fs::kind_of_meta;
use crate::tree::NodeKind;

/// Sibling directories probed in one go: enough to keep two or four threads busy,
/// few enough that their listings and `lstat`s stay small (≤ 8 × 1,024 entries).
const WINDOW: usize = 8;

/// A directory opened (and, unless it is a mount point not to cross, listed).
pub(super) struct Opened {
    pub fd: OwnedFd,
    /// Its entries, or why they could not be listed (`None`: not listed, a mount point).
    pub names: Option<io::Result<Vec<OsString>>>,
    /// The parent snapshot's version of it.
    pub sub: Option<PrevDir>,
    /// Its entries' `lstat`s, taken when the parent's version has as many entries (the
    /// only case in which it can be unchanged as a whole).
    pub stats: Option<Vec<io::Result<Meta>>>,
}

/// What opening a directory found.
pub(super) enum Probe {
    Opened(Opened),
    /// It could not be opened.
    Failed(io::Error),
    /// What was opened is not the directory `lstat` saw: replaced since.
    Replaced,
}

/// Opens directory `name` of `dir` (stat'ed as `st`), lists it unless `list` is false,
/// and loads its parent version from `prev`; `parallel`: `lstat` its entries on rayon's
/// threads.
pub(super) fn probe(
    repo: &Repository,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &Meta,
    prev: Option<&PrevDir>,
    list: bool,
    parallel: bool,
) -> Probe {
    let fd = match dirfd::open_dir_at(dir, name) {
        Ok(fd) => fd,
        Err(e) => return Probe::Failed(e),
    };
    if !dirfd::fstat(&fd).is_ok_and(|now| now.same_file(st)) {
        return Probe::Replaced;
    }
    let sub = prev.and_then(|p| p.subdir(repo, name.as_encoded_bytes()));
    let names = list.then(|| dirfd::list_dir(fd.as_fd()));
    let stats = match (&names, &sub) {
        (Some(Ok(names)), Some(p))
            if p.tree.nodes.len() == names.len() && names.len() <= STAT_SLICE =>
        {
            Some(stat_all(fd.as_fd(), names, parallel))
        }
        _ => None,
    };
    Probe::Opened(Opened {
        fd,
        names,
        sub,
        stats,
    })
}

/// Probes of the directories among one listed slice, made a window at a time.
pub(super) struct Ahead {
    probes: HashMap<usize, Probe>,
    /// Positions in the slice of the directories not probed yet, in order.
    dirs: std::collections::VecDeque<usize>,
}

impl Ahead {
    /// Nothing to probe unless the walk compares with a parent and may use two threads.
    pub fn new(prev: Option<&PrevDir>, parallel: bool, stats: &[io::Result<Meta>]) -> Self {
        let dirs = if prev.is_some() && parallel {
            stats
                .iter()
                .enumerate()
                .filter(|(_, st)| {
                    st.as_ref()
                        .is_ok_and(|st| kind_of_meta(st) == Some(NodeKind::Dir))
                })
                .map(|(i, _)| i)
                .collect()
        } else {
            Default::default()
        };
        Self {
            probes: HashMap::new(),
            dirs,
        }
    }

    /// The probe of entry `i` of `slice`; probes it and the next directories of the
    /// window first if it has not been. `plan(i, st)` says whether a directory may be
    /// probed at all (`None`: excluded now, or marked — never opened, as a walk without
    /// probes would not) and whether to list it (`false`: a mount point not to cross).
    /// `None` for an entry that is not a directory, one `plan` refused, or when nothing
    /// is probed ahead.
    pub fn take(
        &mut self,
        i: usize,
        slice: &Slice<'_>,
        plan: &(dyn Fn(usize, &Meta) -> Option<bool> + Sync),
    ) -> Option<Probe> {
        use rayon::prelude::*;
        while self.dirs.front().is_some_and(|&d| d < i) {
            self.dirs.pop_front();
        }
        if self.dirs.front() == Some(&i) && !self.probes.contains_key(&i) {
            let window: Vec<usize> = self.dirs.iter().take(WINDOW).copied().collect();
            // Several probes run side by side, each stat'ing its entries on its own
            // thread; a directory alone in its window stats them on all threads instead.
            let alone = window.len() == 1;
            let made: Vec<(usize, Probe)> = window
                .par_iter()
                .filter_map(|&d| {
                    let st = slice.stats[d].as_ref().ok()?;
                    let list = plan(d, st)?;
                    let (repo, dir, name) = (slice.repo, slice.dir, &slice.names[d]);
                    Some((d, probe(repo, dir, name, st, slice.prev, list, alone)))
                })
                .collect();
            self.probes.extend(made);
        }
        self.probes.remove(&i)
    }
}

/// The listed entries of one directory slice, as the walker holds them.
pub(super) struct Slice<'a> {
    pub repo: &'a Repository,
    pub dir: BorrowedFd<'a>,
    pub names: &'a [OsString],
    pub stats: &'a [io::Result<Meta>],
    /// The parent snapshot's version of the directory.
    pub prev: Option<&'a PrevDir>,
}
