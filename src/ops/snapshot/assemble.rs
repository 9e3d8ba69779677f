//! The assembler (the caller's thread): ordered walker events plus the chunkers' file
//! results become trees, bottom-up; new trees go to the sealers.

use std::collections::HashMap;

use crossbeam_channel::{Receiver, Sender};

use super::dirsig;
use super::parent::PrevDir;
use super::stages::{FileDone, SealJob};
use super::walk::{Event, STAT_SLICE};
use super::Seen;
use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::TreeId;
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::snapshot::{Skipped, Summary};
use crate::tree::{self, Node, Tree};

/// One directory being assembled: its own node (none for the root), its children, and the
/// parent snapshot's version of it.
struct Frame {
    node: Option<Node>,
    children: Vec<Node>,
    prev: Option<PrevDir>,
}

/// Assembler: turns ordered walker events plus file results into trees, bottom-up.
pub(super) fn assemble(
    repo: &Repository,
    ctx: &Ctx,
    seen: &Seen,
    events: Receiver<Vec<Event>>,
    done: Receiver<Vec<FileDone>>,
    seal: Sender<Vec<SealJob>>,
    parent_root: Option<PrevDir>,
) -> Result<(TreeId, Summary)> {
    let aborted = || Error::Internal("backup pipeline stopped early".into());
    let mut summary = Summary::default();
    let mut stack = vec![Frame {
        node: None,
        children: Vec::new(),
        prev: parent_root,
    }];
    let mut waiting: HashMap<u64, FileDone> = HashMap::new();
    for ev in events.iter().flatten() {
        match ev {
            Event::Enter(node, prev) => stack.push(Frame {
                node: Some(node),
                children: Vec::new(),
                prev,
            }),
            Event::Leave => {
                let frame = stack.pop().ok_or_else(aborted)?;
                let id = store_tree(repo, seen, &seal, frame.children, frame.prev)?;
                let mut node = frame.node.ok_or_else(aborted)?;
                node.subtree = Some(id);
                summary.dirs += 1;
                stack.last_mut().ok_or_else(aborted)?.children.push(node);
            }
            Event::Leaf(node) => {
                summary.others += 1;
                stack.last_mut().ok_or_else(aborted)?.children.push(node);
            }
            Event::Skipped(s) => {
                ctx.warn(Some(s.path.clone()), s.error.clone());
                summary.skipped.push(s);
            }
            Event::SameDir(mut node, id, files, bytes) => {
                node.subtree = Some(id);
                summary.dirs += 1;
                summary.files_unchanged += files;
                summary.total_bytes += bytes;
                stack.last_mut().ok_or_else(aborted)?.children.push(node);
            }
            Event::Unchanged(node) => {
                summary.files_unchanged += 1;
                summary.total_bytes += node.size;
                stack.last_mut().ok_or_else(aborted)?.children.push(node);
            }
            Event::File(seq, path, mut node, existed) => {
                let result = loop {
                    if let Some(d) = waiting.remove(&seq) {
                        break d.result;
                    }
                    let answers = done.recv().map_err(|_| aborted())?;
                    waiting.extend(answers.into_iter().map(|d| (d.seq, d)));
                };
                let path = crate::tree::path::text(&path);
                match result {
                    Ok((chunks, size, changed)) => {
                        (node.content, node.size) = (chunks, size);
                        count_file(&mut summary, path, size, changed, existed);
                        stack.last_mut().ok_or_else(aborted)?.children.push(node);
                    }
                    Err(error) => {
                        ctx.warn(Some(path.clone()), error.clone());
                        summary.skipped.push(Skipped { path, error });
                    }
                }
            }
        }
    }
    if stack.len() != 1 {
        return Err(aborted());
    }
    let root = stack.pop().ok_or_else(aborted)?;
    let id = store_tree(repo, seen, &seal, root.children, root.prev)?;
    Ok((id, summary))
}

/// Counts a file the chunkers read: new or changed, and whether it changed while read.
fn count_file(summary: &mut Summary, path: String, size: u64, changed: bool, existed: bool) {
    if changed {
        summary.changed_during_read.push(path);
    }
    if existed {
        summary.files_changed += 1;
    } else {
        summary.files_new += 1;
    }
    summary.total_bytes += size;
    summary.bytes_read += size;
}

/// Encodes a directory and queues it for storing unless an identical tree exists. A
/// directory equal to the parent snapshot's reuses its id without encoding.
fn store_tree(
    repo: &Repository,
    seen: &Seen,
    seal: &Sender<Vec<SealJob>>,
    nodes: Vec<Node>,
    prev: Option<PrevDir>,
) -> Result<TreeId> {
    let mut t = Tree { nodes };
    t.sort();
    if let Some(p) = prev {
        if p.tree().nodes == t.nodes {
            keep_digest(repo, &p.id, &t);
            return Ok(p.id);
        }
    }
    let enc = tree::encode(&t);
    let id = repo.hasher().tree_id(&enc);
    if seen.claim(repo, BlobKind::Tree, id.into())? {
        seal.send(vec![SealJob {
            kind: BlobKind::Tree,
            id: id.into(),
            data: enc,
        }])
        .map_err(|_| Error::Internal("backup pipeline stopped early".into()))?;
    }
    keep_digest(repo, &id, &t);
    Ok(id)
}

/// Keeps the entry digest of a directory of plain files that the next walk may compare
/// by digest ([`dirsig`]): one a probe `lstat`s whole, at most [`STAT_SLICE`] entries.
fn keep_digest(repo: &Repository, id: &TreeId, t: &Tree) {
    if t.nodes.len() <= STAT_SLICE {
        if let Some(digest) = dirsig::of_nodes(&t.nodes) {
            dirsig::keep(repo, id, &digest);
        }
    }
}
