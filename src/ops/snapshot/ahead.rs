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

use crossbeam_channel::{Receiver, Sender};

use super::dirsig;
use super::parent::PrevDir;
use super::walk::{stat_all, STAT_SLICE};
use crate::dirfd::{self, Meta};
use crate::id::TreeId;
use crate::repository::Repository;
use crate::source::fs::{kind_of_meta, OwnerNames};
use crate::tree::NodeKind;

/// Sibling directories probed in one go: enough to keep two or four threads busy,
/// few enough that their listings and `lstat`s stay small (≤ 8 × 1,024 entries).
const WINDOW: usize = 8;

/// A directory opened (and, unless it is a mount point not to cross, listed).
pub(super) struct Opened {
    pub fd: OwnedFd,
    /// Its entries, or why they could not be listed (`None`: not listed, a mount point).
    pub names: Option<io::Result<Vec<OsString>>>,
    /// The parent snapshot's version of it, unless [`Opened::same`] made it unneeded.
    pub sub: Option<PrevDir>,
    /// Its entries' `lstat`s, taken when the parent snapshot has a version of it and it
    /// has at most [`STAT_SLICE`] entries (the only case in which it can be unchanged as
    /// a whole).
    pub stats: Option<Vec<io::Result<Meta>>>,
    /// The parent's version, its files and bytes, when its kept digest shows it unchanged
    /// ([`dirsig`]): that version was not loaded.
    pub same: Option<Same>,
}

/// A directory found unchanged by its digest: the parent's tree id, files and bytes.
#[derive(Clone, Copy)]
pub(super) struct Same {
    pub id: TreeId,
    pub files: u64,
    pub bytes: u64,
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
/// and compares it with its parent version from `prev`: by digest, else by loading that
/// version; `parallel`: `lstat` its entries on rayon's threads.
pub(super) fn probe(at: &Here<'_>, name: &OsStr, st: &Meta, list: bool, parallel: bool) -> Probe {
    let fd = match dirfd::open_dir_at(at.dir, name) {
        Ok(fd) => fd,
        Err(e) => return Probe::Failed(e),
    };
    if !dirfd::fstat(&fd).is_ok_and(|now| now.same_file(st)) {
        return Probe::Replaced;
    }
    let sub_id = at.prev.and_then(|p| p.subdir_id(name.as_encoded_bytes()));
    let names = list.then(|| dirfd::list_dir(fd.as_fd()));
    let (mut stats, mut same) = (None, None);
    if let (Some(id), Some(Ok(names))) = (sub_id, &names) {
        if names.len() <= STAT_SLICE {
            let st = stat_all(fd.as_fd(), names, parallel);
            same = dirsig::unchanged(at.repo, &id, names, &st, at.owners)
                .map(|(files, bytes)| Same { id, files, bytes });
            stats = Some(st);
        }
    }
    let sub = match same {
        Some(_) => None,
        None => sub_id.and_then(|id| PrevDir::load(at.repo, id)),
    };
    Probe::Opened(Opened {
        fd,
        names,
        sub,
        stats,
        same,
    })
}

/// Probes of the directories among one listed slice, kept [`WINDOW`] directories ahead
/// of the walker on rayon's threads, so that probing the next directories overlaps with
/// the walker's own work on the current one (comparing, sending events).
pub(super) struct Ahead {
    /// Positions in the slice of its directories and their `lstat`s, in order.
    dirs: Vec<(usize, Meta)>,
    /// `dirs[..next]` have been handed to a probe.
    next: usize,
    /// Probes handed out and not yet received.
    pending: usize,
    /// Probes received, by position (`None`: `plan` refused it).
    ready: HashMap<usize, Option<Probe>>,
    done: (Sender<Made>, Receiver<Made>),
}

/// A finished probe: the entry's position and what was found.
type Made = (usize, Option<Probe>);

impl Ahead {
    /// Nothing to probe unless the walk compares with a parent and may use two threads.
    pub fn new(prev: Option<&PrevDir>, parallel: bool, stats: &[io::Result<Meta>]) -> Self {
        let dirs = if prev.is_some() && parallel {
            stats
                .iter()
                .enumerate()
                .filter_map(|(i, st)| {
                    let st = st.as_ref().ok()?;
                    (kind_of_meta(st) == Some(NodeKind::Dir)).then_some((i, *st))
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            dirs,
            next: 0,
            pending: 0,
            ready: HashMap::new(),
            done: crossbeam_channel::unbounded(),
        }
    }

    /// The probe of entry `i` of `slice`, waiting for it if it is still running; first
    /// hands the directories up to [`WINDOW`] past `i` to probes on `scope`. `plan(i, st)`
    /// says whether a directory may be probed at all (`None`: excluded now, or marked —
    /// never opened, as a walk without probes would not) and whether to list it
    /// (`false`: a mount point not to cross). `None` for an entry that is not a
    /// directory, one `plan` refused, or when nothing is probed ahead. Entries are taken
    /// in order.
    pub fn take<'scope>(
        &mut self,
        scope: &rayon::Scope<'scope>,
        i: usize,
        slice: &Slice<'scope>,
        plan: &'scope (dyn Fn(usize, &Meta) -> Option<bool> + Sync),
    ) -> Option<Probe> {
        let first = self.dirs.partition_point(|&(d, _)| d < i);
        self.next = self.next.max(first);
        while self.next < self.dirs.len() && self.next < first + WINDOW {
            let (d, st) = self.dirs[self.next];
            self.next += 1;
            // The last directory of the slice with nothing else running stats its
            // entries on all threads; otherwise each probe stats on its own thread.
            let alone = self.pending == 0 && self.next == self.dirs.len();
            let (here, name) = (slice.here, &slice.names[d]);
            let tx = self.done.0.clone();
            self.pending += 1;
            scope.spawn(move |_| {
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    plan(d, &st).map(|list| probe(&here, name, &st, list, alone))
                }));
                // Always answered, so the walker never waits for a probe that died; a
                // panic then goes on to the scope, which raises it in the walker. The
                // walker may have stopped and dropped the receiver: nothing to do.
                match made {
                    Ok(made) => {
                        let _ = tx.send((d, made));
                    }
                    Err(panic) => {
                        let _ = tx.send((d, None));
                        std::panic::resume_unwind(panic);
                    }
                }
            });
        }
        if self.dirs.get(first).map(|&(d, _)| d) != Some(i) {
            return None;
        }
        while !self.ready.contains_key(&i) && self.pending > 0 {
            match self.done.1.recv() {
                Ok((d, made)) => {
                    self.pending -= 1;
                    self.ready.insert(d, made);
                }
                Err(_) => break,
            }
        }
        self.ready.remove(&i).flatten()
    }
}

/// The directory being walked, as a probe of one of its subdirectories needs it.
#[derive(Clone, Copy)]
pub(super) struct Here<'a> {
    pub repo: &'a Repository,
    pub dir: BorrowedFd<'a>,
    /// The parent snapshot's version of the directory.
    pub prev: Option<&'a PrevDir>,
    /// The walk's owner name cache.
    pub owners: &'a OwnerNames,
}

/// The listed entries of one directory slice, as the walker holds them (their `lstat`s
/// stay with the walker, which takes each as it visits it; [`Ahead`] copies those of the
/// directories when it is made).
pub(super) struct Slice<'a> {
    pub here: Here<'a>,
    pub names: &'a [OsString],
}
