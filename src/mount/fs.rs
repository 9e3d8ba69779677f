//! The FUSE face of [`Layout`]: answers the kernel's lookups, attributes, listings,
//! link reads and file reads. Read-only: every other request gets the default refusal.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, Request,
};

use super::content::ChunkCache;
use super::layout::{CollectionFile, Item, Layout};
use crate::error::Error;
use crate::tree::{Node, NodeKind, Timestamp};

/// How long the kernel may keep attributes and names: snapshots never change, but the
/// made-up directories (`latest`, `snapshots/`) do.
const TTL: Duration = Duration::from_secs(1);
/// `open` flag: reads go straight to us (files whose size is only known at the end).
const FOPEN_DIRECT_IO: u32 = 1;
/// `open` flag: the kernel may keep cached pages of this file across opens.
const FOPEN_KEEP_CACHE: u32 = 2;

/// An open file.
enum Open {
    /// A file of chunks: where each starts, and the total.
    Chunks {
        content: Vec<crate::id::ChunkId>,
        starts: Vec<u64>,
        total: u64,
    },
    /// Bytes the mount made (index specs).
    Text(Arc<Vec<u8>>),
    Jsonl(super::content::JsonLines),
}

/// The mounted file system.
pub struct MountFs {
    pub layout: Layout,
    pub cache: Arc<ChunkCache>,
    open: HashMap<u64, Open>,
    next_fh: u64,
    /// The mount's own time, for the made-up directories.
    started: SystemTime,
    uid: u32,
    gid: u32,
}

impl MountFs {
    pub fn new(layout: Layout, cache: Arc<ChunkCache>) -> Self {
        MountFs {
            layout,
            cache,
            open: HashMap::new(),
            next_fh: 1,
            started: SystemTime::now(),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }

    fn attr(&self, ino: u64, item: &Item) -> FileAttr {
        let mut a = FileAttr {
            ino,
            size: 0,
            blocks: 0,
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        match item {
            Item::Link(target) => {
                a.kind = FileType::Symlink;
                a.perm = 0o777;
                a.nlink = 1;
                a.size = target.len() as u64;
            }
            Item::Snap(id) | Item::MongoRoot(id) | Item::MongoDb(id, _) => {
                if let Some(s) = self.layout.snapshot(id) {
                    let t = system_time(s.time.timestamp(), s.time.timestamp_subsec_nanos());
                    (a.atime, a.mtime, a.ctime) = (t, t, t);
                }
            }
            Item::Dir(_, n) | Item::Leaf(n) => node_attr(&mut a, n),
            Item::Collection {
                snap,
                file,
                node,
                text,
                ..
            } => {
                a.kind = FileType::RegularFile;
                a.perm = 0o444;
                a.nlink = 1;
                a.size = match file {
                    CollectionFile::Bson => node.as_ref().map_or(0, |n| n.size),
                    CollectionFile::Indexes => text.len() as u64,
                    // Known only once converted: read with direct I/O until the end.
                    CollectionFile::Jsonl => 0,
                };
                if let Some(s) = self.layout.snapshot(snap) {
                    let t = system_time(s.time.timestamp(), s.time.timestamp_subsec_nanos());
                    (a.atime, a.mtime, a.ctime) = (t, t, t);
                }
            }
            _ => {}
        }
        a.blocks = a.size.div_ceil(512);
        a
    }

    fn open_item(&self, item: &Item) -> Result<(Open, u32), Error> {
        match item {
            Item::Leaf(n) if n.kind() == NodeKind::File => {
                let (starts, total) = self.cache.offsets(&n.content)?;
                let open = Open::Chunks {
                    content: n.content.clone(),
                    starts,
                    total,
                };
                Ok((open, FOPEN_KEEP_CACHE))
            }
            Item::Collection {
                file, node, text, ..
            } => match (file, node) {
                (CollectionFile::Indexes, _) | (_, None) => {
                    let t = if *file == CollectionFile::Indexes {
                        text.clone()
                    } else {
                        Arc::new(Vec::new()) // a view has no documents
                    };
                    Ok((Open::Text(t), FOPEN_KEEP_CACHE))
                }
                (CollectionFile::Bson, Some(n)) => {
                    let (starts, total) = self.cache.offsets(&n.content)?;
                    let open = Open::Chunks {
                        content: n.content.clone(),
                        starts,
                        total,
                    };
                    Ok((open, FOPEN_KEEP_CACHE))
                }
                (CollectionFile::Jsonl, Some(n)) => {
                    let ns = match item {
                        Item::Collection { ns, .. } => ns.clone(),
                        _ => String::new(),
                    };
                    let j = super::content::JsonLines::new(n.content.clone(), ns);
                    Ok((Open::Jsonl(j), FOPEN_DIRECT_IO))
                }
            },
            _ => Err(Error::Refused("not a regular file".into())),
        }
    }
}

/// A tree node's attributes as the kernel wants them.
fn node_attr(a: &mut FileAttr, n: &Node) {
    a.kind = match n.kind() {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
    };
    a.perm = (n.mode & 0o7777) as u16;
    a.uid = n.uid;
    a.gid = n.gid;
    a.size = match n.kind() {
        NodeKind::Symlink => n.target.len() as u64,
        NodeKind::Dir => 0,
        _ => n.size,
    };
    a.nlink = match n.kind() {
        NodeKind::Dir => 2,
        _ => u32::try_from(n.links.max(1)).unwrap_or(u32::MAX),
    };
    a.rdev = u32::try_from(n.rdev).unwrap_or(0);
    a.mtime = ts(n.mtime);
    a.ctime = ts(n.ctime);
    a.atime = a.mtime;
    a.crtime = a.mtime;
}

fn ts(t: Timestamp) -> SystemTime {
    system_time(t.sec, t.nsec)
}

fn system_time(sec: i64, nsec: u32) -> SystemTime {
    let d = Duration::new(sec.unsigned_abs(), nsec);
    if sec >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

/// The errno for a failed request; the cause goes to the log (the kernel takes a number).
fn errno(e: &Error) -> i32 {
    tracing::warn!("mount: {e}");
    match e {
        Error::Missing(_) => nix::libc::ENOENT,
        Error::Refused(_) => nix::libc::EISDIR,
        Error::Selection(_) => nix::libc::ENOTDIR,
        _ => nix::libc::EIO,
    }
}

impl Filesystem for MountFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let children = match self.layout.children(parent) {
            Ok(c) => c,
            Err(e) => return reply.error(errno(&e)),
        };
        let Some((n, item)) = children.into_iter().find(|(n, _)| n == name.as_bytes()) else {
            return reply.error(nix::libc::ENOENT);
        };
        let ino = self.layout.intern(parent, &n, item.clone());
        reply.entry(&TTL, &self.attr(ino, &item), 0);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.layout.item(ino).cloned() {
            Some(item) => reply.attr(&TTL, &self.attr(ino, &item)),
            None => reply.error(nix::libc::ENOENT),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.layout.item(ino) {
            Some(Item::Link(t)) => reply.data(t),
            Some(Item::Leaf(n)) if n.kind() == NodeKind::Symlink => reply.data(&n.target),
            Some(_) => reply.error(nix::libc::EINVAL),
            None => reply.error(nix::libc::ENOENT),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & nix::libc::O_ACCMODE != nix::libc::O_RDONLY {
            return reply.error(nix::libc::EROFS);
        }
        let Some(item) = self.layout.item(ino).cloned() else {
            return reply.error(nix::libc::ENOENT);
        };
        match self.open_item(&item) {
            Ok((open, how)) => {
                let fh = self.next_fh;
                self.next_fh += 1;
                self.open.insert(fh, open);
                reply.opened(fh, how);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let offset = u64::try_from(offset).unwrap_or(0);
        let size = size as usize;
        let read = match self.open.get_mut(&fh) {
            None => return reply.error(nix::libc::EBADF),
            Some(Open::Chunks {
                content,
                starts,
                total,
            }) => self.cache.read(content, starts, *total, offset, size),
            Some(Open::Text(t)) => {
                let from = (offset as usize).min(t.len());
                Ok(t[from..(from + size).min(t.len())].to_vec())
            }
            Some(Open::Jsonl(j)) => j.read(&self.cache, offset, size),
        };
        match read {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.open.remove(&fh);
        reply.ok();
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let children = match self.layout.children(ino) {
            Ok(c) => c,
            Err(e) => return reply.error(errno(&e)),
        };
        let parent = self.layout.parent(ino);
        let mut all = vec![
            (ino, FileType::Directory, b".".to_vec()),
            (parent, FileType::Directory, b"..".to_vec()),
        ];
        for (name, item) in children {
            let child = self.layout.intern(ino, &name, item.clone());
            all.push((child, self.attr(child, &item).kind, name));
        }
        let skip = usize::try_from(offset).unwrap_or(0);
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(skip) {
            if reply.add(child, (i + 1) as i64, kind, OsStr::from_bytes(&name)) {
                break;
            }
        }
        reply.ok();
    }
}
