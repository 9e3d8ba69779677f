//! Directories of plain files found unchanged by the entry digest the local index keeps
//! for their tree, without loading that tree.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use repo::id::TreeId;
use repo::snapshot::Snapshot;

use super::*;

/// The tree id of directory `path` (absolute) in `snap`.
fn dir_tree(repo: &Repository, snap: &Snapshot, path: &Path) -> TreeId {
    let mut id = snap.tree;
    for c in path.components().skip(1) {
        let tree = repo.load_tree(&id).expect("tree");
        let node = tree
            .nodes
            .iter()
            .find(|n| n.name == c.as_os_str().as_bytes())
            .unwrap_or_else(|| panic!("no {c:?} in the snapshot"));
        id = node.subtree.expect("a directory");
    }
    id
}

#[test]
fn a_directory_of_plain_files_is_compared_by_its_kept_digest() {
    let f = Fixture::new();
    let src = f.path("src");
    let plain = src.join("plain");
    let mixed = src.join("mixed");
    std::fs::create_dir_all(&plain).unwrap();
    for i in 0..6 {
        std::fs::write(
            plain.join(format!("f{i}.bin")),
            format!("file {i}\n").repeat(300),
        )
        .unwrap();
    }
    std::fs::create_dir_all(mixed.join("sub")).unwrap();
    std::fs::write(mixed.join("file"), "a file\n").unwrap();
    std::os::unix::fs::symlink("file", mixed.join("link")).unwrap();
    let repo = f.open();
    let ctx = Ctx::default();
    let first = snapshot::run(&repo, &snapshot_of(&[&src]), &ctx).expect("snapshot 1");
    let index = repo.index().expect("index");
    let plain_id = dir_tree(&repo, &first, &plain);
    let kept = index
        .dir_digest(&plain_id)
        .expect("read")
        .expect("kept when written");
    let mixed_id = dir_tree(&repo, &first, &mixed);
    assert_eq!(index.dir_digest(&mixed_id).expect("read"), None);

    // A wrong digest costs only the comparison through the tree, which keeps the right one.
    index.put_dir_digest(&plain_id, &[0; 32]).expect("write");
    let second = snapshot::run(&repo, &snapshot_of(&[&src]), &ctx).expect("snapshot 2");
    assert_eq!(dir_tree(&repo, &second, &plain), plain_id);
    assert_eq!(second.summary.bytes_read, 0, "{:?}", second.summary);
    assert_eq!(index.dir_digest(&plain_id).expect("read"), Some(kept));

    // Changes the digest must see: content rewritten at the same size with the old mtime
    // (only ctime tells), permissions, a new hard link (the link count).
    let f0 = plain.join("f0.bin");
    let before = std::fs::metadata(&f0).unwrap();
    let mut data = std::fs::read(&f0).unwrap();
    data[0] ^= 0xff;
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&f0, &data).unwrap();
    filetime::set_file_mtime(
        &f0,
        filetime::FileTime::from_last_modification_time(&before),
    )
    .unwrap();
    std::fs::set_permissions(plain.join("f1.bin"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::hard_link(plain.join("f2.bin"), src.join("linked.bin")).unwrap();
    let third = snapshot::run(&repo, &snapshot_of(&[&src]), &ctx).expect("snapshot 3");
    assert_ne!(dir_tree(&repo, &third, &plain), plain_id);
    assert_eq!(third.summary.files_changed, 3, "{:?}", third.summary);
    assert_eq!(third.summary.files_new, 1, "{:?}", third.summary);

    let out = f.path("out");
    restore::run(&repo, &restore_into(&out, SnapshotRef::latest()), &ctx).expect("restore");
    let back = restored(&out, &src);
    assert_eq!(contents(&back), contents(&src));
    let mode = std::fs::metadata(back.join("plain/f1.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
