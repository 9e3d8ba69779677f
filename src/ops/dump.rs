//! `repo dump`: one path of a snapshot written to a stream — a file as its bytes, a
//! directory (or the whole snapshot) as a tar archive — without restoring anything to
//! disk. The dashboard's downloads use the same call.

use std::collections::HashMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{ChunkId, SnapshotId};
use crate::ops::context::Ctx;
use crate::ops::select::{self, SnapshotRef};
use crate::repository::Repository;
use crate::tree::path::SnapPath;
use crate::tree::walk::{RawPath, TreeWalk, Visit, Visitor};
use crate::tree::{Node, NodeKind};

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
        _ => {
            let mut ar = tar::Builder::new(out);
            // The archive holds the entry by its own name ("projects/…"), as `tar -C
            // parent -c name` would, so unpacking it does not recreate the absolute path.
            let mut entries = TarEntries {
                repo,
                ctx,
                ar: &mut ar,
                prefix: Vec::new(),
                report: &mut report,
                linked: HashMap::new(),
            };
            let below = match node {
                None => Some(snap.tree),
                Some(n) => {
                    entries.prefix = path.file_name().to_vec();
                    entries.add(&entries.prefix.clone(), n)?;
                    n.subtree
                }
            };
            if let Some(tree) = below {
                TreeWalk::new(repo).visit(&tree, &mut entries)?;
            }
            ar.finish()
                .map_err(|e| Error::io("writing the tar archive", e))?;
        }
    }
    Ok(report)
}

/// Adds the entries below a directory to the archive under their exact names: names
/// are bytes, not always UTF-8, and two that differ only in invalid bytes stay two.
struct TarEntries<'a, 'w> {
    repo: &'a Repository,
    ctx: &'a Ctx,
    ar: &'a mut tar::Builder<&'w mut dyn Write>,
    /// The dumped directory's own name ("" for a whole snapshot).
    prefix: Vec<u8>,
    report: &'a mut DumpReport,
    /// Files of several links already in the archive, by (device, inode): their name
    /// and content. A later link to one is a hard-link record, as `tar` writes it.
    linked: HashMap<(u64, u64), (Vec<u8>, Vec<ChunkId>)>,
}

impl TarEntries<'_, '_> {
    fn add(&mut self, name: &[u8], n: &Node) -> Result<()> {
        self.ctx.check()?;
        self.report.entries += 1;
        let mut link_to = None;
        if let Some(group) = n.link_group() {
            match self.linked.get(&group) {
                // Only a link whose content is the first's: a file rewritten between the
                // backup's reads of its two names is two files.
                Some((first, content)) if *content == n.content => link_to = Some(first.clone()),
                Some(_) => {}
                None => {
                    let first = (name.to_vec(), n.content.clone());
                    self.linked.insert(group, first);
                }
            }
        }
        self.report.bytes += append(self.repo, self.ar, name, n, link_to.as_deref(), self.ctx)?;
        Ok(())
    }
}

impl Visitor for TarEntries<'_, '_> {
    fn entry(&mut self, path: &RawPath, n: &Node) -> Result<Visit> {
        let mut name = self.prefix.clone();
        for c in path {
            if !name.is_empty() {
                name.push(b'/');
            }
            name.extend_from_slice(c);
        }
        self.add(&name, n)?;
        Ok(Visit::Descend)
    }
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

/// A file's content as a reader: its chunks, read one at a time as they are needed (a
/// file of any size costs one chunk of memory). A total that disagrees with the node's
/// size is an error, not a short or long file.
struct Content<'a> {
    repo: &'a Repository,
    node: &'a Node,
    ctx: &'a Ctx,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    total: u64,
}

impl<'a> Content<'a> {
    fn new(repo: &'a Repository, node: &'a Node, ctx: &'a Ctx) -> Self {
        Content {
            repo,
            node,
            ctx,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            total: 0,
        }
    }

    fn fill(&mut self) -> Result<bool> {
        let Some(c) = self.node.content.get(self.next) else {
            if self.total != self.node.size {
                return Err(Error::corrupt(
                    format!("file of {} bytes", self.node.size),
                    format!("its chunks hold {} bytes", self.total),
                ));
            }
            return Ok(false);
        };
        self.ctx.check()?;
        self.buf = self.repo.read_blob(BlobKind::Data, &(*c).into())?;
        self.pos = 0;
        self.next += 1;
        self.total += self.buf.len() as u64;
        Ok(true)
    }
}

impl std::io::Read for Content<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The repository error inside an I/O error from [`Content`], or the I/O error itself.
fn unwrap_io(e: std::io::Error, context: &str) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<Error>()) {
        if let Some(Ok(inner)) = e.into_inner().map(|b| b.downcast::<Error>()) {
            return *inner;
        }
        return Error::Internal("a dump read error lost its cause".into());
    }
    Error::io(context.to_string(), e)
}

/// Writes a file's chunks in order; returns the bytes written.
fn content(repo: &Repository, n: &Node, ctx: &Ctx, out: &mut dyn Write) -> Result<u64> {
    std::io::copy(&mut Content::new(repo, n, ctx), out)
        .map_err(|e| unwrap_io(e, "writing the dump"))
}

/// Appends one entry to the archive with its mode, owner and time; `link_to`: a file
/// written as a hard link to that earlier entry.
fn append(
    repo: &Repository,
    ar: &mut tar::Builder<&mut dyn Write>,
    name: &[u8],
    n: &Node,
    link_to: Option<&[u8]>,
    ctx: &Ctx,
) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let shown = String::from_utf8_lossy(name).into_owned();
    let name = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
    let io = |e| Error::io(format!("writing {shown} to the tar archive"), e);
    let mut h = tar::Header::new_gnu();
    h.set_mode(n.mode);
    h.set_uid(u64::from(n.uid));
    h.set_gid(u64::from(n.gid));
    let _ = h.set_username(&n.user);
    let _ = h.set_groupname(&n.group);
    h.set_mtime(u64::try_from(n.mtime.sec).unwrap_or(0));
    let pax = pax_records(n);
    if !pax.is_empty() {
        ar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(io)?;
    }
    if let (NodeKind::File, Some(first)) = (n.kind(), link_to) {
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        ar.append_link(&mut h, name, std::ffi::OsStr::from_bytes(first))
            .map_err(io)?;
        return Ok(0);
    }
    match n.kind() {
        NodeKind::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(n.size);
            let mut r = Content::new(repo, n, ctx);
            ar.append_data(&mut h, name, &mut r)
                .map_err(|e| unwrap_io(e, &format!("writing {shown} to the tar archive")))?;
            Ok(r.total)
        }
        NodeKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            let mut dir = name.as_os_str().as_bytes().to_vec();
            dir.push(b'/');
            ar.append_data(&mut h, std::ffi::OsStr::from_bytes(&dir), std::io::empty())
                .map_err(io)?;
            Ok(0)
        }
        NodeKind::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            let target = std::ffi::OsStr::from_bytes(&n.target);
            ar.append_link(&mut h, name, target).map_err(io)?;
            Ok(0)
        }
        NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
            let (kind, (major, minor)) = match n.kind() {
                NodeKind::Fifo => (tar::EntryType::Fifo, (0, 0)),
                NodeKind::CharDevice => (tar::EntryType::Char, split_rdev(n.rdev)),
                _ => (tar::EntryType::Block, split_rdev(n.rdev)),
            };
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_device_major(major).map_err(io)?;
            h.set_device_minor(minor).map_err(io)?;
            ar.append_data(&mut h, name, std::io::empty()).map_err(io)?;
            Ok(0)
        }
    }
}

/// The PAX records an entry needs beyond the header: the nanoseconds of its mtime (the
/// header holds whole seconds) and its extended attributes as `SCHILY.xattr.NAME`, which
/// GNU tar (`--xattrs`) and bsdtar restore. Attribute names are text in PAX; one that is
/// not UTF-8 (Linux allows it, nothing writes it) cannot be named there and is left out.
fn pax_records(n: &Node) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if n.mtime.nsec != 0 && n.mtime.sec >= 0 {
        let exact = format!("{}.{:09}", n.mtime.sec, n.mtime.nsec);
        out.push(("mtime".to_string(), exact.into_bytes()));
    }
    for (k, v) in &n.xattrs {
        if let Ok(k) = std::str::from_utf8(k) {
            out.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
    }
    out
}

/// Linux's device number as (major, minor), as glibc's `major`/`minor` split it.
fn split_rdev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & 0xffff_f000);
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xffff_ff00);
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::split_rdev;

    #[test]
    fn device_numbers_split_as_glibc_does() {
        // glibc's makedev: major's low 12 bits at 8, the rest at 32; minor's low 8 bits
        // at 0, the rest at 12.
        let makedev = |ma: u64, mi: u64| {
            ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
        };
        for (ma, mi) in [
            (0, 0),
            (1, 3),
            (8, 1),
            (259, 300),
            (4095, 255),
            (70000, 1 << 19),
        ] {
            assert_eq!(split_rdev(makedev(ma, mi)), (ma as u32, mi as u32));
        }
    }
}
