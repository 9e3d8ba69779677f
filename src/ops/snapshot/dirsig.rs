//! Directory digests: a directory of regular files only is unchanged since the parent
//! snapshot when each entry's name and metadata equal the parent tree's entry (what
//! [`file_unchanged`](crate::source::fs::file_unchanged) compares). Comparing means
//! loading the parent's tree: reading, decrypting, decompressing, verifying and decoding
//! it, which after the `lstat`s themselves is most of a no-change snapshot's work.
//!
//! Instead, a digest of exactly those fields is kept in the local index for every such
//! tree, when a snapshot writes it or first finds it unchanged; the next walk digests its
//! fresh `lstat`s the same way and compares 32 bytes. Trees are named by their content, so
//! the digest kept for a tree id never goes stale. The index is a cache: a missing digest
//! (a new cache, another host's snapshot) costs only the comparison through the tree, after
//! which the digest is kept. A directory found unchanged this way reuses the parent's tree
//! id only while the local index lists that tree, as any deduplicated blob is reused.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::blob::BlobKind;
use crate::dirfd::Meta;
use crate::id::TreeId;
use crate::repository::Repository;
use crate::source::fs::{kind_of_meta, OwnerNames};
use crate::tree::{Node, NodeKind, Timestamp};

/// A digest of a directory's entries.
pub(super) type Digest = [u8; 32];

/// Starts every digested text, so that a change to what is digested (a new version here)
/// never matches a digest kept by an older one.
const DOMAIN: &[u8] = b"repo: directory of regular files, v1\0";

/// The fields of one entry that decide whether it is unchanged.
struct Entry<'a> {
    name: &'a [u8],
    size: u64,
    mtime: (i64, u32),
    ctime: (i64, u32),
    inode: u64,
    device: u64,
    links: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The digested text: each field fixed-width, names and owner names length-prefixed.
struct Text(Vec<u8>);

impl Text {
    fn new(entries: usize) -> Self {
        let mut buf = Vec::with_capacity(DOMAIN.len() + 8 + entries * 96);
        buf.extend_from_slice(DOMAIN);
        buf.extend_from_slice(&(entries as u64).to_le_bytes());
        Text(buf)
    }

    fn bytes(&mut self, b: &[u8]) {
        put_bytes(&mut self.0, b);
    }

    /// Appends entry `e`, whose owners' names [`owner_text`] gave as `owners`.
    fn push(&mut self, e: &Entry<'_>, owners: &[u8]) {
        self.bytes(e.name);
        for v in [e.size, e.inode, e.device, e.links] {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        for (sec, nsec) in [e.mtime, e.ctime] {
            self.0.extend_from_slice(&sec.to_le_bytes());
            self.0.extend_from_slice(&nsec.to_le_bytes());
        }
        for v in [e.mode, e.uid, e.gid] {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        self.0.extend_from_slice(owners);
    }

    fn digest(&self) -> Digest {
        *blake3::hash(&self.0).as_bytes()
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

/// The owner names of an entry as [`Text::push`] appends them, into `out`.
fn owner_text(user: &str, group: &str, out: &mut Vec<u8>) {
    out.clear();
    put_bytes(out, user.as_bytes());
    put_bytes(out, group.as_bytes());
}

fn pair(t: Timestamp) -> (i64, u32) {
    (t.sec, t.nsec)
}

/// The digest of a directory's listed entries (in listing order, which is name order) and
/// their `lstat`s, with their total size; `None` unless every entry is a regular file.
pub(super) fn of_stats(
    names: &[OsString],
    stats: &[io::Result<Meta>],
    owners: &OwnerNames,
) -> Option<(Digest, u64)> {
    if names.len() != stats.len() {
        return None;
    }
    let mut text = Text::new(names.len());
    let mut bytes = 0u64;
    // Most entries of a directory share their owners: their names are looked up (under
    // the cache's locks) only when the ids change.
    let (mut ids, mut owned) = (None, Vec::new());
    for (name, st) in names.iter().zip(stats) {
        let st = st.as_ref().ok()?;
        if kind_of_meta(st) != Some(NodeKind::File) {
            return None;
        }
        let e = Entry {
            name: name.as_bytes(),
            size: st.size,
            mtime: st.mtime,
            ctime: st.ctime,
            inode: st.ino,
            device: st.dev,
            links: st.nlink,
            mode: st.perm,
            uid: st.uid,
            gid: st.gid,
        };
        if ids != Some((st.uid, st.gid)) {
            owners.with_names(st.uid, st.gid, |user, group| {
                owner_text(user, group, &mut owned)
            });
            ids = Some((st.uid, st.gid));
        }
        text.push(&e, &owned);
        bytes = bytes.saturating_add(st.size);
    }
    Some((text.digest(), bytes))
}

/// The digest of a tree's entries (sorted, as stored), computed from the entries exactly
/// as [`of_stats`] computes it from `lstat`s that [`file_unchanged`] would find equal to
/// them; `None` unless every entry is a regular file whose content the tree lists.
///
/// [`file_unchanged`]: crate::source::fs::file_unchanged
pub(super) fn of_nodes(nodes: &[Node]) -> Option<Digest> {
    let plain = |n: &Node| {
        n.kind == Some(NodeKind::File)
            && n.rdev == 0
            && n.target.is_empty()
            && n.subtree.is_none()
            && (n.size == 0 || !n.content.is_empty())
    };
    if !nodes.iter().all(plain) {
        return None;
    }
    let mut text = Text::new(nodes.len());
    let mut owned = Vec::new();
    for n in nodes {
        let e = Entry {
            name: &n.name,
            size: n.size,
            mtime: pair(n.mtime),
            ctime: pair(n.ctime),
            inode: n.inode,
            device: n.device,
            links: n.links,
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
        };
        owner_text(&n.user, &n.group, &mut owned);
        text.push(&e, &owned);
    }
    Some(text.digest())
}

/// Files and bytes of directory `id` of the parent snapshot when its kept digest equals
/// that of the entries listed now (`names`, `stats`) and the local index lists the tree;
/// `None` when either is missing or differs (the caller then compares through the tree).
pub(super) fn unchanged(
    repo: &Repository,
    id: &TreeId,
    names: &[OsString],
    stats: &[io::Result<Meta>],
    owners: &OwnerNames,
) -> Option<(u64, u64)> {
    let index = repo.index().ok()?;
    let kept = index.dir_digest(id).ok()??;
    let (now, bytes) = of_stats(names, stats, owners)?;
    if now != kept || !index.contains(BlobKind::Tree, &(*id).into()).ok()? {
        return None;
    }
    Some((names.len() as u64, bytes))
}

/// Keeps `digest` for tree `id`. A failure only costs the next walk a comparison
/// through the tree, so it is logged, not raised.
pub(super) fn keep(repo: &Repository, id: &TreeId, digest: &Digest) {
    let kept = repo
        .index()
        .and_then(|index| index.put_dir_digest(id, digest));
    if let Err(e) = kept {
        tracing::debug!("keeping a directory digest in the local index: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ChunkId;

    fn meta(size: u64, mtime: i64) -> Meta {
        Meta {
            dev: 7,
            ino: 100 + size,
            kind: rustix::fs::FileType::RegularFile,
            perm: 0o644,
            nlink: 1,
            uid: 3_000_000_017,
            gid: 3_000_000_019,
            rdev: 0,
            size,
            mtime: (mtime, 5),
            ctime: (mtime + 1, 6),
        }
    }

    /// The node a walk builds from `st`, its content read.
    fn node(name: &str, st: &Meta) -> Node {
        use std::os::fd::AsFd;
        let owners = OwnerNames::default();
        let dir = std::fs::File::open("/").expect("open /");
        let mut n = crate::source::fs::node_without_xattrs(
            name.as_bytes(),
            dir.as_fd(),
            st,
            NodeKind::File,
            &owners,
        )
        .expect("node");
        n.content = vec![ChunkId([1; 32])];
        n
    }

    #[test]
    fn the_digest_of_stats_is_that_of_the_nodes_built_from_them() {
        let owners = OwnerNames::default();
        let stats = [meta(10, 1_000), meta(20, 2_000)];
        let names: Vec<OsString> = ["a", "b"].iter().map(OsString::from).collect();
        let nodes: Vec<Node> = names
            .iter()
            .zip(&stats)
            .map(|(n, st)| node(n.to_str().unwrap_or(""), st))
            .collect();
        let results: Vec<io::Result<Meta>> = stats.iter().copied().map(Ok).collect();
        let (digest, bytes) = of_stats(&names, &results, &owners).expect("all files");
        assert_eq!(Some(digest), of_nodes(&nodes));
        assert_eq!(bytes, 30);
    }

    #[test]
    fn any_compared_field_changes_the_digest() {
        let owners = OwnerNames::default();
        let names: Vec<OsString> = ["a"].iter().map(OsString::from).collect();
        let base = meta(10, 1_000);
        let digest = |st: Meta| of_stats(&names, &[Ok(st)], &owners).map(|d| d.0);
        let before = digest(base);
        let changes: [fn(&mut Meta); 10] = [
            |m| m.size += 1,
            |m| m.mtime.1 += 1,
            |m| m.ctime.0 += 1,
            |m| m.ino += 1,
            |m| m.dev += 1,
            |m| m.nlink += 1,
            |m| m.perm = 0o600,
            |m| m.uid += 1,
            |m| m.gid += 1,
            |m| m.mtime.0 -= 1,
        ];
        for change in changes {
            let mut st = base;
            change(&mut st);
            assert_ne!(digest(st), before);
        }
        let renamed: Vec<OsString> = ["b"].iter().map(OsString::from).collect();
        assert_ne!(
            of_stats(&renamed, &[Ok(base)], &owners).map(|d| d.0),
            before
        );
        // Names and sizes cannot be shifted between fields or entries.
        let two: Vec<OsString> = ["ab", "c"].iter().map(OsString::from).collect();
        let split: Vec<OsString> = ["a", "bc"].iter().map(OsString::from).collect();
        let pair = [Ok(base), Ok(base)];
        assert_ne!(
            of_stats(&two, &pair, &owners).map(|d| d.0),
            of_stats(&split, &pair, &owners).map(|d| d.0)
        );
        // Owners are looked up again whenever they change from one entry to the next.
        let mut other = base;
        other.uid = 0;
        let owned = [Ok(base), Ok(other)];
        let digest_two = |stats: &[io::Result<Meta>]| of_stats(&two, stats, &owners).map(|d| d.0);
        assert_ne!(digest_two(&owned), digest_two(&pair));
        let mut nodes: Vec<Node> = [("ab", base), ("c", other)]
            .iter()
            .map(|(n, st)| node(n, st))
            .collect();
        assert_eq!(digest_two(&owned), of_nodes(&nodes));
        nodes[1].user = "someone else".into();
        assert_ne!(digest_two(&owned), of_nodes(&nodes));
    }

    #[test]
    fn only_directories_of_plain_files_have_a_digest() {
        let owners = OwnerNames::default();
        let names: Vec<OsString> = ["a"].iter().map(OsString::from).collect();
        let mut dir = meta(0, 1);
        dir.kind = rustix::fs::FileType::Directory;
        assert!(of_stats(&names, &[Ok(dir)], &owners).is_none());
        let failed: io::Result<Meta> = Err(io::ErrorKind::NotFound.into());
        assert!(of_stats(&names, &[failed], &owners).is_none());
        assert!(of_stats(&names, &[], &owners).is_none());

        let st = meta(10, 1);
        let plain = node("a", &st);
        assert!(of_nodes(std::slice::from_ref(&plain)).is_some());
        let mut unread = plain.clone();
        unread.content.clear();
        let mut link = plain.clone();
        link.target = b"x".to_vec();
        let mut sub = plain.clone();
        sub.kind = Some(NodeKind::Dir);
        for n in [unread, link, sub] {
            assert!(of_nodes(&[n]).is_none());
        }
        // An empty file lists no content and still qualifies.
        let empty = node("e", &meta(0, 1));
        let empty = Node {
            content: Vec::new(),
            ..empty
        };
        assert!(of_nodes(&[empty]).is_some());
    }
}
