//! Canonical tree encoding and its strict decoder (every byte is untrusted).

use super::{Node, NodeKind, Timestamp, Tree, TREE_MAGIC, TREE_VERSION};
use crate::error::{Error, Result};
use crate::id::{ChunkId, TreeId};

/// Encodes a tree; callers must have sorted it ([`Tree::sort`]).
pub fn encode(tree: &Tree) -> Vec<u8> {
    let mut o = Vec::with_capacity(64 + tree.nodes.len() * 160);
    o.extend_from_slice(TREE_MAGIC);
    o.push(TREE_VERSION);
    o.extend_from_slice(&(tree.nodes.len() as u32).to_le_bytes());
    for n in &tree.nodes {
        put_bytes16(&mut o, &n.name);
        o.push(n.kind().code());
        o.extend_from_slice(&n.mode.to_le_bytes());
        o.extend_from_slice(&n.uid.to_le_bytes());
        o.extend_from_slice(&n.gid.to_le_bytes());
        put_bytes16(&mut o, n.user.as_bytes());
        put_bytes16(&mut o, n.group.as_bytes());
        put_time(&mut o, n.mtime);
        put_time(&mut o, n.ctime);
        for v in [n.size, n.inode, n.device, n.links, n.rdev] {
            o.extend_from_slice(&v.to_le_bytes());
        }
        o.extend_from_slice(&(n.target.len() as u32).to_le_bytes());
        o.extend_from_slice(&n.target);
        match &n.subtree {
            Some(t) => {
                o.push(1);
                o.extend_from_slice(t.as_bytes());
            }
            None => o.push(0),
        }
        o.extend_from_slice(&(n.content.len() as u32).to_le_bytes());
        for c in &n.content {
            o.extend_from_slice(c.as_bytes());
        }
        o.extend_from_slice(&(n.xattrs.len() as u32).to_le_bytes());
        for (k, v) in &n.xattrs {
            put_bytes16(&mut o, k);
            o.extend_from_slice(&(v.len() as u32).to_le_bytes());
            o.extend_from_slice(v);
        }
    }
    o
}

fn put_bytes16(o: &mut Vec<u8>, b: &[u8]) {
    // Names, user names and xattr names are bounded well below 64 KiB by every OS.
    let len = b.len().min(u16::MAX as usize);
    o.extend_from_slice(&(len as u16).to_le_bytes());
    o.extend_from_slice(&b[..len]);
}

fn put_time(o: &mut Vec<u8>, t: Timestamp) {
    o.extend_from_slice(&t.sec.to_le_bytes());
    o.extend_from_slice(&t.nsec.to_le_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn err(&self, d: &str) -> Error {
        Error::corrupt(self.what, d.to_string())
    }
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(self.err("truncated"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    #[inline]
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    #[inline]
    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    #[inline]
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    #[inline]
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn id(&mut self) -> Result<[u8; 32]> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    #[inline]
    fn take16(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn bytes16(&mut self) -> Result<Vec<u8>> {
        Ok(self.take16()?.to_vec())
    }
    fn bytes32(&mut self) -> Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn str16(&mut self) -> Result<&'a str> {
        let b = self.take16()?;
        std::str::from_utf8(b).map_err(|_| self.err("user/group name is not UTF-8"))
    }
    fn time(&mut self) -> Result<Timestamp> {
        let sec = self.u64()? as i64;
        let nsec = self.u32()?;
        if nsec >= 1_000_000_000 {
            return Err(self.err("nanoseconds out of range"));
        }
        Ok(Timestamp { sec, nsec })
    }
    /// A count of items of at least `min` bytes each, checked against what is left so a
    /// hostile count cannot trigger a huge allocation.
    fn count(&mut self, min: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() {
            return Err(self.err("count exceeds remaining bytes"));
        }
        Ok(n)
    }
}

/// Decodes a tree, rejecting anything non-canonical.
pub fn decode(bytes: &[u8], what: &str) -> Result<Tree> {
    let views = nodes(bytes, what)?;
    let mut out: Vec<Node> = Vec::with_capacity(views.len());
    for v in views {
        out.push(v?.to_node());
    }
    Ok(Tree { nodes: out })
}

/// One entry of an encoded tree, borrowed from its bytes: what [`decode`] would make of
/// it, without allocating (a walk comparing a directory with its parent version reads
/// every entry and keeps none).
#[derive(Clone, Copy, Debug)]
pub struct NodeView<'a> {
    pub name: &'a [u8],
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: &'a str,
    pub group: &'a str,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub size: u64,
    pub inode: u64,
    pub device: u64,
    pub links: u64,
    pub rdev: u64,
    pub target: &'a [u8],
    pub subtree: Option<TreeId>,
    /// The content chunk ids, 32 bytes each.
    pub content: &'a [u8],
    /// The extended attributes, as encoded (already checked), and how many.
    xattrs: (&'a [u8], usize),
}

impl NodeView<'_> {
    /// How many content chunks the entry lists.
    pub fn chunks(&self) -> usize {
        self.content.len() / 32
    }

    /// The owned node.
    pub fn to_node(&self) -> Node {
        let mut r = Reader {
            b: self.xattrs.0,
            what: "",
        };
        // Checked when the view was made: these reads cannot fail.
        let xattrs = (0..self.xattrs.1)
            .map_while(|_| Some((r.bytes16().ok()?, r.bytes32().ok()?)))
            .collect();
        Node {
            name: self.name.to_vec(),
            kind: Some(self.kind),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            user: self.user.to_owned(),
            group: self.group.to_owned(),
            mtime: self.mtime,
            ctime: self.ctime,
            size: self.size,
            inode: self.inode,
            device: self.device,
            links: self.links,
            rdev: self.rdev,
            target: self.target.to_vec(),
            subtree: self.subtree,
            content: self
                .content
                .chunks_exact(32)
                .map_while(|c| Some(ChunkId(c.try_into().ok()?)))
                .collect(),
            xattrs,
        }
    }
}

/// The entries of an encoded tree in order, each checked as [`decode`] checks it; the
/// last item is an error if bytes follow the last entry.
pub struct Nodes<'a> {
    r: Reader<'a>,
    left: usize,
    prev: Option<&'a [u8]>,
    done: bool,
}

/// Reads a tree's header; the entries follow from the iterator.
pub fn nodes<'a>(bytes: &'a [u8], what: &'a str) -> Result<Nodes<'a>> {
    let mut r = Reader { b: bytes, what };
    if r.take(4)? != TREE_MAGIC {
        return Err(r.err("tree magic missing"));
    }
    let v = r.u8()?;
    if v != TREE_VERSION {
        return Err(r.err(&format!("tree version {v} unknown")));
    }
    let left = r.count(2)?;
    Ok(Nodes {
        r,
        left,
        prev: None,
        done: false,
    })
}

impl Nodes<'_> {
    /// Entries not read yet.
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether every entry has been read.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl<'a> Iterator for Nodes<'a> {
    type Item = Result<NodeView<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            return (!self.r.b.is_empty())
                .then(|| Err(self.r.err("trailing bytes after last entry")));
        }
        self.left -= 1;
        let item = self.entry();
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

impl<'a> Nodes<'a> {
    fn entry(&mut self) -> Result<NodeView<'a>> {
        let r = &mut self.r;
        let name = r.take16()?;
        let kind = NodeKind::from_code(r.u8()?).ok_or_else(|| r.err("unknown node kind"))?;
        let (mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?);
        let (user, group) = (r.str16()?, r.str16()?);
        let (mtime, ctime) = (r.time()?, r.time()?);
        let (size, inode, device, links, rdev) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let n = r.u32()? as usize;
        let target = r.take(n)?;
        let subtree = match r.u8()? {
            0 => None,
            1 => Some(TreeId(r.id()?)),
            _ => return Err(r.err("bad subtree flag")),
        };
        let nc = r.count(32)?;
        let content = r.take(nc * 32)?;
        let nx = r.count(6)?;
        let start = r.b;
        let mut last: Option<&[u8]> = None;
        for _ in 0..nx {
            let k = r.take16()?;
            let n = r.u32()? as usize;
            r.take(n)?;
            if last.is_some_and(|pk| pk >= k) {
                return Err(r.err("xattrs not strictly sorted"));
            }
            last = Some(k);
        }
        let xattrs = (&start[..start.len() - r.b.len()], nx);
        if (kind == NodeKind::Dir) != subtree.is_some() {
            return Err(r.err("subtree present exactly when the node is a directory"));
        }
        if kind != NodeKind::File && nc != 0 {
            return Err(r.err("content on a node that is not a file"));
        }
        if self.prev.is_some_and(|p| p >= name) {
            return Err(r.err("entries not strictly sorted by name"));
        }
        self.prev = Some(name);
        Ok(NodeView {
            name,
            kind,
            mode,
            uid,
            gid,
            user,
            group,
            mtime,
            ctime,
            size,
            inode,
            device,
            links,
            rdev,
            target,
            subtree,
            content,
            xattrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_node() -> impl Strategy<Value = Node> {
        (
            proptest::collection::vec(1u8..=255, 1..20),
            0u8..6,
            any::<u32>(),
            (any::<u32>(), any::<u32>(), "[a-z]{0,8}", "[a-z]{0,8}"),
            (
                any::<i64>(),
                0u32..1_000_000_000,
                any::<u64>(),
                any::<u64>(),
            ),
            proptest::collection::vec(any::<u8>(), 0..30),
            proptest::collection::vec(any::<[u8; 32]>(), 0..4),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 1..8),
                proptest::collection::vec(any::<u8>(), 0..8),
                0..3,
            ),
        )
            .prop_map(
                |(
                    name,
                    k,
                    mode,
                    (uid, gid, user, group),
                    (s, ns, size, ino),
                    target,
                    content,
                    xattrs,
                )| {
                    let kind = NodeKind::from_code(k).unwrap();
                    Node {
                        name,
                        kind: Some(kind),
                        mode,
                        uid,
                        gid,
                        user,
                        group,
                        mtime: Timestamp { sec: s, nsec: ns },
                        ctime: Timestamp {
                            sec: s / 2,
                            nsec: ns / 2,
                        },
                        size,
                        inode: ino,
                        device: 3,
                        links: 1,
                        rdev: 0,
                        target,
                        subtree: (kind == NodeKind::Dir).then_some(TreeId([9; 32])),
                        content: if kind == NodeKind::File {
                            content.into_iter().map(ChunkId).collect()
                        } else {
                            vec![]
                        },
                        xattrs: xattrs.into_iter().collect(),
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn round_trip(nodes in proptest::collection::vec(arb_node(), 0..8)) {
            let mut t = Tree { nodes };
            t.sort();
            t.nodes.dedup_by(|a, b| a.name == b.name);
            let enc = encode(&t);
            let dec = decode(&enc, "t").unwrap();
            prop_assert_eq!(&dec, &t);
            prop_assert_eq!(encode(&dec), enc);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes, "t");
        }
    }

    #[test]
    fn unsorted_rejected() {
        let mk = |n: &[u8]| Node {
            name: n.to_vec(),
            kind: Some(NodeKind::File),
            ..Node::default()
        };
        let t = Tree {
            nodes: vec![mk(b"b"), mk(b"a")],
        };
        assert!(decode(&encode(&t), "t").is_err());
        let t = Tree {
            nodes: vec![mk(b"a"), mk(b"a")],
        };
        assert!(decode(&encode(&t), "t").is_err());
    }
}
