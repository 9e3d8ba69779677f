//! Restoring what is not content: ownership, modes, xattrs and times, through handles or
//! directory descriptors only (see [`super::target`]).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use filetime::FileTime;
use rustix::fs::FileType;

use crate::dirfd;
use crate::error::{Error, Result};
use crate::tree::{Node, NodeKind};

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

/// Applies ownership (as root), mode, xattrs and times to a symlink, FIFO or device node
/// `name` inside `dir`, never following a symlink: owner and times through the directory
/// with `AT_SYMLINK_NOFOLLOW`, the mode through an `O_PATH` handle checked to still be of
/// the node's kind, xattrs with the `l*` calls.
pub(super) fn apply_special(
    node: &Node,
    dir: std::os::fd::BorrowedFd<'_>,
    name: &OsStr,
    p: &Path,
) -> Result<()> {
    use std::os::fd::AsFd;
    let is_link = node.kind() == NodeKind::Symlink;
    if nix::unistd::geteuid().is_root() {
        dirfd::lchown_at(dir, name, node.uid, node.gid)
            .map_err(|e| Error::io(format!("changing owner of {}", p.display()), e))?;
    }
    if !is_link {
        // chmod after chown: chown clears setuid/setgid bits.
        let h = dirfd::open_path_at(dir, name)
            .map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
        let st = dirfd::fstat(h.as_fd())
            .map_err(|e| Error::io(format!("inspecting {}", p.display()), e))?;
        let want = match node.kind() {
            NodeKind::Fifo => FileType::Fifo,
            NodeKind::CharDevice => FileType::CharacterDevice,
            _ => FileType::BlockDevice,
        };
        if st.kind != want {
            return Err(Error::Refused(format!(
                "{} changed while being restored; its metadata was not applied",
                p.display()
            )));
        }
        dirfd::chmod_fd(h.as_fd(), node.mode)
            .map_err(|e| Error::io(format!("setting mode of {}", p.display()), e))?;
    }
    let at = dirfd::proc_path_at(dir, name);
    for (k, v) in &node.xattrs {
        // lsetxattr: the final component is never followed. Symlink xattrs in the user
        // namespace are refused by Linux; others may need root.
        if let Err(e) = xattr::set(&at, OsStr::from_bytes(k), v) {
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
    dirfd::set_times_at(dir, name, node.mtime.sec, node.mtime.nsec)
        .map_err(|e| Error::io(format!("setting times of {}", p.display()), e))
}
