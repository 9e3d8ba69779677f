//! `repo ls`: the entries of a snapshot below a path, streamed to the caller.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::SnapshotId;
use crate::ops::context::Ctx;
use crate::ops::select::{self, SnapshotRef};
use crate::repository::Repository;
use crate::tree::path::{hex_if_not_utf8, SnapPath};
use crate::tree::walk::{TreeWalk, Visit};
use crate::tree::{Node, NodeKind};

/// `ls`: a snapshot and a path in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LsRequest {
    /// The snapshot (`latest` prefers the newest that holds `path`).
    #[serde(default)]
    pub snapshot: SnapshotRef,
    /// Only this path and what is below it.
    #[serde(default = "SnapPath::root")]
    pub path: SnapPath,
}

/// One entry, as `ls` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LsEntry {
    /// Snapshot path (in JSON, bytes that are not UTF-8 show as `\xNN`; `path_hex` is
    /// then exact).
    pub path: SnapPath,
    /// The path's bytes in hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Entry type.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits, octal ("0644").
    pub mode: String,
    /// Owner id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Owner name (empty when unknown).
    pub user: String,
    /// Group name (empty when unknown).
    pub group: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (RFC 3339).
    pub mtime: String,
    /// Symlink target (bytes that are not UTF-8 show as `\xNN`; `target_hex` is then
    /// exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The symlink target's bytes in hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
}

impl LsEntry {
    fn of(path: &SnapPath, n: &Node) -> Self {
        let link = n.kind() == NodeKind::Symlink;
        LsEntry {
            path: path.clone(),
            path_hex: hex_if_not_utf8(path.as_bytes()),
            kind: n.kind(),
            mode: format!("{:04o}", n.mode),
            uid: n.uid,
            gid: n.gid,
            user: n.user.clone(),
            group: n.group.clone(),
            size: n.size,
            mtime: crate::tree::format_time(n.mtime),
            target: link.then(|| crate::tree::path::shown(&n.target).into_owned()),
            target_hex: link.then(|| hex_if_not_utf8(&n.target)).flatten(),
        }
    }

    /// `ls -l`'s mode column ("drwxr-xr-x").
    pub fn mode_string(&self) -> String {
        let bits = u32::from_str_radix(&self.mode, 8).unwrap_or(0);
        let mut s = String::with_capacity(10);
        s.push(self.kind.letter());
        for shift in [6, 3, 0] {
            let b = (bits >> shift) & 7;
            s.push(if b & 4 != 0 { 'r' } else { '-' });
            s.push(if b & 2 != 0 { 'w' } else { '-' });
            s.push(if b & 1 != 0 { 'x' } else { '-' });
        }
        s
    }
}

/// What `ls` listed.
#[derive(Clone, Debug, Serialize)]
pub struct LsReport {
    /// The snapshot listed.
    pub snapshot: SnapshotId,
    /// Entries listed.
    pub entries: u64,
    /// Under `/mongodb`: the collections those files hold.
    #[cfg(feature = "mongo")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<crate::mongo::restore::SavedCollection>,
}

/// Lists the entries at and below `req.path`, parents first, handing each to `each` as
/// it is read (a listing of millions of entries never sits in memory). No lock: it only
/// reads.
pub fn run(
    repo: &Repository,
    req: &LsRequest,
    ctx: &Ctx,
    each: &mut dyn FnMut(LsEntry) -> Result<()>,
) -> Result<LsReport> {
    let snap = select::snapshot(repo, &req.snapshot, std::slice::from_ref(&req.path))?;
    let mut entries = 0;
    TreeWalk::new(repo)
        .walk_from(&snap.tree, &req.path, &mut |path, node| {
            ctx.check()?;
            entries += 1;
            each(LsEntry::of(path, node))?;
            Ok(Visit::Descend)
        })
        .map_err(|e| match e {
            crate::Error::Selection(m) => {
                crate::Error::Selection(format!("{m} {}", snap.id.short()))
            }
            other => other,
        })?;
    #[cfg(feature = "mongo")]
    let collections = {
        // Under /mongodb, also say what the files hold: collections with their counts.
        let trimmed = req.path.to_str().unwrap_or("").trim_end_matches('/');
        if trimmed == "/mongodb" || trimmed.starts_with("/mongodb/") {
            let db = trimmed
                .strip_prefix("/mongodb/")
                .map(|d| d.split('/').next().unwrap_or(d));
            crate::mongo::restore::collections(repo, &snap)?
                .into_iter()
                .filter(|c| db.is_none_or(|d| c.ns.starts_with(&format!("{d}."))))
                .collect()
        } else {
            Vec::new()
        }
    };
    Ok(LsReport {
        snapshot: snap.id,
        entries,
        #[cfg(feature = "mongo")]
        collections,
    })
}
