//! `dump` of a directory: its entries as a tar archive, with exact names, modes, owners,
//! times, extended attributes, devices and hard links.

use std::io::Write;

use super::content::{unwrap_io, Content};
use super::DumpReport;
use crate::error::{Error, Result};
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::tree::path::SnapPath;
use crate::tree::walk::{RawPath, TreeWalk, Visit, Visitor};
use crate::tree::{LinkGroups, Node, NodeKind};

/// Writes `node` (`None`: the whole snapshot) and everything below it to `out` as a tar
/// archive; counts entries and bytes in `report`.
pub(super) fn write(
    repo: &Repository,
    snap: &crate::snapshot::Snapshot,
    node: Option<&Node>,
    path: &SnapPath,
    ctx: &Ctx,
    out: &mut dyn Write,
    report: &mut DumpReport,
) -> Result<()> {
    let mut ar = tar::Builder::new(out);
    // The archive holds the entry by its own name ("projects/…"), as `tar -C
    // parent -c name` would, so unpacking it does not recreate the absolute path.
    let mut entries = TarEntries {
        repo,
        ctx,
        ar: &mut ar,
        prefix: Vec::new(),
        report,
        linked: LinkGroups::default(),
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
    Ok(())
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
    /// Hard-link groups already in the archive, by their first member's name: a later
    /// link to one is a hard-link record, as `tar` writes it.
    linked: LinkGroups<Vec<u8>>,
}

impl TarEntries<'_, '_> {
    fn add(&mut self, name: &[u8], n: &Node) -> Result<()> {
        self.ctx.check()?;
        self.report.entries += 1;
        let link_to = self.linked.link_to(n, || name.to_vec());
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
