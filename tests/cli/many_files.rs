//! Trees of many small files: the walker, chunkers and sealers pass them in batches, so
//! these cross every batch boundary (events, file jobs, blobs) with files of all sizes,
//! and check that batching changes nothing a user can see: the same tree ids whatever the
//! thread count, the same bytes and extended attributes back, the same incremental counts.

use std::fs;
use std::path::Path;

use crate::common::{assert_same_tree, write_big_file, Env};

fn summary(s: &serde_json::Value, field: &str) -> u64 {
    s["summary"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no summary.{field} in {s}"))
}

/// 40 directories of 100 files (0 B to ~4 KiB), with a 3 MiB file every 7th directory
/// (more than a file batch's bytes) and an unreadable file when not root.
fn make_tree(src: &Path) -> u64 {
    let mut files = 0;
    for d in 0..40 {
        let dir = src.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let body = format!("{d}/{f} ").repeat((d * 100 + f) % 700);
            fs::write(dir.join(format!("f{f:03}")), body).unwrap();
            files += 1;
        }
        if d % 7 == 3 {
            write_big_file(&dir.join("big.bin"), 3 << 20, d as u64);
            files += 1;
        }
    }
    files
}

fn xattr_value(tag: u8) -> Vec<u8> {
    // Longer than the first buffer the walker offers (256 bytes), so it has to grow.
    (0..300u32).map(|i| tag.wrapping_add(i as u8)).collect()
}

/// Eight of these make a name list longer than 256 bytes (ext4 keeps all of a file's
/// attributes in one 4 KiB block, so eight long values is about what fits).
fn xattr_name(i: u8) -> String {
    format!("user.a-rather-long-attribute-name-for-the-list-{i:02}")
}

#[test]
fn batched_pipeline_is_deterministic_and_restores_exactly() {
    let env = Env::new();
    let src = env.path("src");
    let files = make_tree(&src);
    // Many attribute names (a list longer than 256 bytes) and long values on some files.
    let tagged = src.join("d05/f042");
    for i in 0..8u8 {
        xattr::set(&tagged, xattr_name(i), &xattr_value(i))
            .expect("the test directory's file system must support user xattrs");
    }
    xattr::set(src.join("d39/f099"), "user.small", b"v").unwrap();
    xattr::set(src.join("d00/f000"), "user.keep", b"kept").unwrap();
    env.init();
    let path = src.to_str().unwrap();
    let one = env.json(&["snapshot", "--threads", "1", "--tag", "t1", path]);
    let three = env.json(&[
        "snapshot",
        "--threads",
        "3",
        "--tag",
        "t3",
        "--force-full",
        path,
    ]);
    assert_eq!(summary(&one, "files_new"), files, "{one}");
    assert_eq!(summary(&three, "files_new"), files, "{three}");
    // The source's trees must come out identical: only the trees of its ancestors may be
    // new (/tmp's mtime moves while other tests run). Any difference below the source
    // would add its tree and a directory's on top of those.
    let ancestors = src.ancestors().count() as u64 - 1;
    let added = summary(&three, "blobs_added");
    assert!(
        added <= ancestors,
        "tree ids depend on thread count: {added} blobs added, {three}"
    );

    let out = env.path("out");
    env.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    let restored = out.join(src.strip_prefix("/").unwrap());
    assert_same_tree(&src, &restored);
    for i in 0..8u8 {
        let got = xattr::get(restored.join("d05/f042"), xattr_name(i));
        assert_eq!(got.unwrap(), Some(xattr_value(i)), "xattr {i}");
    }

    // An attribute change alone (no content change) is seen: it moves ctime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    xattr::set(src.join("d39/f099"), "user.small", b"changed").unwrap();
    xattr::remove(&tagged, xattr_name(7)).unwrap();
    let next = env.json(&["snapshot", "--threads", "2", path]);
    assert_eq!(summary(&next, "files_unchanged"), files - 2, "{next}");
    assert_eq!(summary(&next, "files_changed"), 2, "{next}");
    let again = env.path("again");
    env.ok(&["restore", "latest", "--target", again.to_str().unwrap()]);
    let restored = again.join(src.strip_prefix("/").unwrap());
    assert_same_tree(&src, &restored);
    let small = xattr::get(restored.join("d39/f099"), "user.small").unwrap();
    assert_eq!(small.as_deref(), Some(&b"changed"[..]));
    let gone = xattr::get(restored.join("d05/f042"), xattr_name(7)).unwrap();
    assert_eq!(gone, None);
    let others = xattr::get(restored.join("d05/f042"), xattr_name(6)).unwrap();
    assert_eq!(others, Some(xattr_value(6)));
    // An unchanged file keeps its attributes (taken from the parent snapshot).
    let kept = xattr::get(restored.join("d00/f000"), "user.keep").unwrap();
    assert_eq!(kept.as_deref(), Some(&b"kept"[..]));

    // A no-change snapshot reads nothing and stores no data (only the ancestors' trees
    // above the source are new: the test directory gained entries).
    let same = env.json(&["snapshot", path]);
    assert_eq!(summary(&same, "files_unchanged"), files);
    assert!(summary(&same, "blobs_added") <= ancestors, "{same}");
    assert_eq!(summary(&same, "bytes_read"), 0);
}
