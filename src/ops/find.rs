//! `repo find`: which snapshots hold a path matching a glob.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::context::Ctx;
use crate::ops::select;
use crate::repository::Repository;
use crate::selection::SnapshotFilter;
use crate::tree::path::{hex_if_not_utf8, SnapPath};
use crate::tree::walk::{TreeWalk, Visit};
use crate::tree::NodeKind;

/// A compiled find pattern: without `/` it matches names, with `/` whole snapshot paths.
pub struct Pattern {
    glob: crate::glob::Glob,
    whole_path: bool,
}

impl Pattern {
    /// Compiles a glob (`*`, `?`, `[..]`, `{a,b}`, `**`).
    pub fn new(pattern: &str) -> Result<Self> {
        let glob = crate::glob::Glob::new(pattern, true)
            .map_err(|e| Error::Invalid(format!("bad pattern {pattern:?}: {e}")))?;
        Ok(Pattern {
            glob,
            whole_path: pattern.contains('/'),
        })
    }

    /// Whether `path` (with `name` its last component) matches. Both are bytes, as
    /// stored: `?` is one character of a UTF-8 name (`caf?` finds `café`) and one byte of
    /// a name that is not UTF-8 (`x?` finds `x\xff`), see [`crate::glob`].
    pub fn matches(&self, path: &[u8], name: &[u8]) -> bool {
        if self.whole_path {
            self.glob.is_match(path)
        } else {
            self.glob.is_match(name)
        }
    }
}

/// One match.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// Short snapshot id.
    pub snapshot: String,
    /// Snapshot time (RFC 3339).
    pub time: String,
    /// Snapshot path of the match (in JSON, bytes that are not UTF-8 show as `\xNN`;
    /// `path_hex` is then exact).
    pub path: SnapPath,
    /// The path's bytes in hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Entry type.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (RFC 3339).
    pub mtime: String,
}

/// `find`: a glob, and which snapshots to search.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindRequest {
    /// Without "/" it matches names (`*.pdf`), with "/" whole snapshot paths.
    pub pattern: String,
    /// Which snapshots to search (default: all).
    #[serde(default)]
    pub filter: SnapshotFilter,
}

/// Every match (serialized as the list of matches).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct FindReport {
    /// The matches, by snapshot (oldest first), then path.
    pub matches: Vec<Found>,
    /// Snapshots searched.
    #[serde(skip)]
    pub snapshots_searched: usize,
}

/// Searches the snapshots `req.filter` passes for paths matching `req.pattern`. Trees
/// shared by several snapshots are read once. No lock: it only reads.
pub fn run(repo: &Repository, req: &FindRequest, ctx: &Ctx) -> Result<FindReport> {
    let pat = Pattern::new(&req.pattern)?;
    let snaps = select::matching(repo, &req.filter)?;
    let mut walk = TreeWalk::remembering(repo);
    let mut matches = Vec::new();
    for s in &snaps {
        ctx.check()?;
        walk.walk(&s.tree, &SnapPath::default(), &mut |path, node| {
            if pat.matches(path.as_bytes(), &node.name) {
                matches.push(Found {
                    snapshot: s.id.short(),
                    time: s.time.to_rfc3339(),
                    path: path.clone(),
                    path_hex: hex_if_not_utf8(path.as_bytes()),
                    kind: node.kind(),
                    size: node.size,
                    mtime: crate::tree::format_time(node.mtime),
                });
            }
            Ok(Visit::Descend)
        })?;
    }
    Ok(FindReport {
        matches,
        snapshots_searched: snaps.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_or_whole_paths() {
        let p = Pattern::new("*.txt").expect("valid");
        assert!(p.matches(b"/a/b/x.txt", b"x.txt"));
        assert!(!p.matches(b"/a/x.txt/y", b"y"));
        let p = Pattern::new("/home/**/docs/*.md").expect("valid");
        assert!(p.matches(b"/home/u/w/docs/a.md", b"a.md"));
        assert!(!p.matches(b"/srv/docs/a.md", b"a.md"));
        // Names are matched as their bytes: `?` is one byte that is not UTF-8.
        let p = Pattern::new("x?").expect("valid");
        assert!(p.matches(b"/d/x\xff", b"x\xff"));
        assert!(!p.matches(b"/d/x\xff\xfe", b"x\xff\xfe"));
        assert!(Pattern::new("a[").is_err());
    }
}
