//! Restoring what is not content: special files, ownership, modes, xattrs and times.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use filetime::FileTime;
use nix::sys::stat::{Mode, SFlag};

use crate::error::{Error, Result};
use crate::tree::{Node, NodeKind};

fn os_err(what: String, e: nix::Error) -> Error {
    Error::io(what, std::io::Error::from(e))
}

/// Creates a symlink, fifo or device node at `p` (replacing a non-directory there).
pub(super) fn create_special(node: &Node, p: &Path) -> Result<()> {
    super::clear_path(p)?;
    match node.kind() {
        NodeKind::Symlink => std::os::unix::fs::symlink(OsStr::from_bytes(&node.target), p)
            .map_err(|e| Error::io(format!("creating symlink {}", p.display()), e)),
        NodeKind::Fifo => nix::unistd::mkfifo(p, Mode::from_bits_truncate(node.mode))
            .map_err(|e| os_err(format!("creating fifo {}", p.display()), e)),
        NodeKind::CharDevice | NodeKind::BlockDevice => {
            let kind = if node.kind() == NodeKind::CharDevice {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            nix::sys::stat::mknod(p, kind, Mode::from_bits_truncate(node.mode), node.rdev)
                .map_err(|e| os_err(format!("creating device {}", p.display()), e))
        }
        NodeKind::File | NodeKind::Dir => Ok(()),
    }
}

/// Applies ownership (as root), mode, xattrs and times to a regular file through its open
/// handle: no path lookups, and nothing can be swapped in under the name meanwhile.
pub(super) fn apply_to_file(node: &Node, f: &std::fs::File, p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    use xattr::FileExt;
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::fchown(f, Some(node.uid), Some(node.gid))
            .map_err(|e| Error::io(format!("changing owner of {}", p.display()), e))?;
    }
    // chmod after chown: chown clears setuid/setgid bits.
    f.set_permissions(std::fs::Permissions::from_mode(node.mode & 0o7777))
        .map_err(|e| Error::io(format!("setting mode of {}", p.display()), e))?;
    for (k, v) in &node.xattrs {
        f.set_xattr(OsStr::from_bytes(k), v).map_err(|e| {
            Error::io(
                format!(
                    "setting xattr {} on {}",
                    String::from_utf8_lossy(k),
                    p.display()
                ),
                e,
            )
        })?;
    }
    let mtime = FileTime::from_unix_time(node.mtime.sec, node.mtime.nsec);
    filetime::set_file_handle_times(f, Some(mtime), Some(mtime))
        .map_err(|e| Error::io(format!("setting times of {}", p.display()), e))
}

/// Applies ownership (as root), mode, xattrs and times, never following a symlink.
pub(super) fn apply(node: &Node, p: &Path) -> Result<()> {
    let is_link = node.kind() == NodeKind::Symlink;
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::lchown(p, Some(node.uid), Some(node.gid))
            .map_err(|e| Error::io(format!("changing owner of {}", p.display()), e))?;
    }
    if !is_link {
        // chmod after chown: chown clears setuid/setgid bits.
        nix::sys::stat::fchmodat(
            None,
            p,
            Mode::from_bits_truncate(node.mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| os_err(format!("setting mode of {}", p.display()), e))?;
    }
    for (k, v) in &node.xattrs {
        // Symlink xattrs in the user namespace are refused by Linux; others may need root.
        if let Err(e) = xattr::set(p, OsStr::from_bytes(k), v) {
            if !is_link {
                return Err(Error::io(
                    format!(
                        "setting xattr {} on {}",
                        String::from_utf8_lossy(k),
                        p.display()
                    ),
                    e,
                ));
            }
        }
    }
    let mtime = FileTime::from_unix_time(node.mtime.sec, node.mtime.nsec);
    filetime::set_symlink_file_times(p, mtime, mtime)
        .map_err(|e| Error::io(format!("setting times of {}", p.display()), e))
}
