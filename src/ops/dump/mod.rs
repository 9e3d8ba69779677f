//! `repo dump`: one path of a snapshot written to a stream — a file as its bytes, a
//! directory (or the whole snapshot) as a tar archive — without restoring anything to
//! disk. The dashboard's downloads use the same call.

mod archive;
mod content;

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::ops::context::Ctx;
use crate::ops::select::{self, SnapshotRef};
use crate::repository::Repository;
use crate::tree::path::SnapPath;
use crate::tree::walk::{TreeWalk, Visit};
use crate::tree::{Node, NodeKind};
use content::content;

/// `dump`: a snapshot and a path in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpRequest {
    /// The snapshot (`latest` prefers the newest that holds `path`).
    #[serde(default)]
    pub snapshot: SnapshotRef,
    /// A file (its bytes) or a directory (a tar archive of it); `/` is the whole snapshot.
    pub path: SnapPath,
    /// Write a tar archive even when `path` is a single file.
    #[serde(default)]
    pub tar: bool,
}

/// What [`run`] would write, known before the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DumpKind {
    /// A regular file's content.
    File,
    /// A tar archive.
    Tar,
}

/// What was written.
#[derive(Clone, Debug, Serialize)]
pub struct DumpReport {
    /// The snapshot read.
    pub snapshot: SnapshotId,
    /// File bytes or a tar archive.
    pub kind: DumpKind,
    /// Entries written (1 for a file).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Resolves what `req` names without writing anything: the snapshot, the entry's node
/// (`None` for the snapshot's root) and what [`write`] will produce. Callers that must
/// choose headers before streaming (the dashboard) call this first.
pub fn resolve(
    repo: &Repository,
    req: &DumpRequest,
) -> Result<(crate::snapshot::Snapshot, Option<Node>, DumpKind)> {
    let snap = select::snapshot(repo, &req.snapshot, std::slice::from_ref(&req.path))?;
    let mut found = None;
    if !req.path.is_root() {
        TreeWalk::new(repo).walk_from(&snap.tree, &req.path, &mut |_, n| {
            found = Some(n.clone());
            Ok(Visit::Skip)
        })?;
    }
    let kind = match &found {
        Some(n) if n.kind() == NodeKind::File && !req.tar => DumpKind::File,
        Some(n) if !matches!(n.kind(), NodeKind::File | NodeKind::Dir) && !req.tar => {
            return Err(Error::Selection(format!(
                "{}: not a file or directory (type {}); ask for a tar archive",
                req.path,
                n.kind().letter()
            )))
        }
        _ => DumpKind::Tar,
    };
    Ok((snap, found, kind))
}

/// Writes the entry `req` names to `out` (see the module comment). No lock: it only reads.
pub fn run(
    repo: &Repository,
    req: &DumpRequest,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<DumpReport> {
    let (snap, node, kind) = resolve(repo, req)?;
    write(repo, &snap, node.as_ref(), &req.path, kind, ctx, out)
}

/// [`run`] after [`resolve`].
pub fn write(
    repo: &Repository,
    snap: &crate::snapshot::Snapshot,
    node: Option<&Node>,
    path: &SnapPath,
    kind: DumpKind,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<DumpReport> {
    let mut report = DumpReport {
        snapshot: snap.id,
        kind,
        entries: 0,
        bytes: 0,
    };
    match (kind, node) {
        (DumpKind::File, Some(n)) => {
            report.bytes = content(repo, n, ctx, out)?;
            report.entries = 1;
        }
        _ => archive::write(repo, snap, node, path, ctx, out, &mut report)?,
    }
    Ok(report)
}

/// How a collection is written.
#[cfg(feature = "mongo")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionFormat {
    /// The raw BSON stream, as `mongorestore` and `bsondump` read it.
    Bson,
    /// Canonical extended JSON, one document per line.
    Jsonl,
    /// The index specs as `listIndexes` returned them, as a JSON array.
    Indexes,
}

/// `dump --mongodb NS`: one collection of a snapshot.
#[cfg(feature = "mongo")]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionDump {
    /// The snapshot (`latest`: the newest holding MongoDB collections).
    #[serde(default)]
    pub snapshot: SnapshotRef,
    /// "db.collection".
    pub ns: String,
    /// What to write.
    pub format: CollectionFormat,
}

/// Writes one collection of a snapshot to `out`, streamed document by document. No lock:
/// it only reads.
#[cfg(feature = "mongo")]
pub fn collection(
    repo: &Repository,
    req: &CollectionDump,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<DumpReport> {
    let mut r = req.snapshot.clone();
    if r.filter.source.is_none() {
        r.filter.source = Some("mongodb".into());
    }
    let snap = select::snapshot(repo, &r, &[])?;
    let saved = crate::mongo::restore::saved(repo, &snap)?;
    let Some(c) = saved.iter().find(|c| c.ns() == req.ns) else {
        let mut names: Vec<String> = saved.iter().map(|c| c.ns()).collect();
        names.sort();
        return Err(Error::Selection(format!(
            "snapshot {} has no collection {:?}; it has: {}",
            snap.id.short(),
            req.ns,
            names.join(", ")
        )));
    };
    let mut report = DumpReport {
        snapshot: snap.id,
        kind: DumpKind::File,
        entries: 0,
        bytes: 0,
    };
    let io = |e| Error::io("writing the dump", e);
    match (req.format, &c.data) {
        (CollectionFormat::Indexes, _) => {
            let specs: Vec<serde_json::Value> = c
                .index_specs()
                .into_iter()
                .map(|d| mongodb::bson::Bson::Document(d).into_canonical_extjson())
                .collect();
            let text = serde_json::to_string_pretty(&specs)
                .map_err(|e| Error::Internal(format!("index specs as JSON: {e}")))?;
            out.write_all(text.as_bytes()).map_err(io)?;
            out.write_all(b"\n").map_err(io)?;
            report.entries = specs.len() as u64;
        }
        (_, None) => {} // a view has no documents
        (CollectionFormat::Bson, Some(node)) => {
            report.bytes = content(repo, node, ctx, out)?;
        }
        (CollectionFormat::Jsonl, Some(node)) => {
            crate::mongo::restore::for_each_saved_doc(repo, node, &req.ns, |raw| {
                ctx.check()?;
                let doc = mongodb::bson::Document::try_from(raw.as_ref()).map_err(|e| {
                    Error::corrupt(format!("a document of {}", req.ns), e.to_string())
                })?;
                let line = mongodb::bson::Bson::Document(doc).into_canonical_extjson();
                let mut text = serde_json::to_vec(&line)
                    .map_err(|e| Error::Internal(format!("a document as JSON: {e}")))?;
                text.push(b'\n');
                out.write_all(&text).map_err(io)?;
                report.entries += 1;
                report.bytes += raw.as_bytes().len() as u64;
                Ok(())
            })?;
        }
    }
    Ok(report)
}
