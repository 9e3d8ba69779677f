//! Incremental snapshots: unchanged files are not read, changes are counted, excludes work.

use std::fs;

use crate::common::{tree_of, Env};

fn summary(s: &serde_json::Value, field: &str) -> u64 {
    s["summary"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no summary.{field} in {s}"))
}

fn make_tree(env: &Env) -> std::path::PathBuf {
    let src = env.path("src");
    for d in 0..5 {
        let dir = src.join(format!("d{d}/inner"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            fs::write(dir.join(format!("f{f}.txt")), format!("dir {d} file {f}\n")).unwrap();
        }
    }
    src
}

#[test]
fn unchanged_tree_reads_nothing_and_one_touch_reads_one_file() {
    let env = Env::new();
    let src = make_tree(&env);
    env.init();
    let first = env.snapshot(&[&src]);
    assert_eq!(summary(&first, "files_new"), 100);
    assert!(first["parent"].is_null());

    let second = env.snapshot(&[&src]);
    assert_eq!(second["parent"], first["id"]);
    assert_eq!(summary(&second, "bytes_read"), 0);
    assert_eq!(summary(&second, "files_unchanged"), 100);
    assert_eq!(summary(&second, "files_new"), 0);

    // Rewrite one file with the same size: mtime/ctime change, so it must be read.
    let touched = src.join("d2/inner/f7.txt");
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&touched, "DIR 2 FILE 7\n").unwrap();
    fs::write(src.join("d0/new.txt"), "brand new\n").unwrap();
    fs::remove_file(src.join("d4/inner/f0.txt")).unwrap();
    fs::remove_dir_all(src.join("d3")).unwrap();
    let third = env.snapshot(&[&src]);
    assert_eq!(third["parent"], second["id"]);
    assert_eq!(summary(&third, "files_changed"), 1);
    assert_eq!(summary(&third, "files_new"), 1);
    assert_eq!(summary(&third, "files_removed"), 21);
    assert_eq!(summary(&third, "files_unchanged"), 78);
    assert_eq!(
        summary(&third, "bytes_read"),
        "DIR 2 FILE 7\n".len() as u64 + "brand new\n".len() as u64
    );

    // The incremental snapshot restores exactly the live tree.
    let restored = restore_latest(&env, &src);
    assert_eq!(
        fs::read(restored.join("d2/inner/f7.txt")).unwrap(),
        b"DIR 2 FILE 7\n"
    );
    assert_eq!(
        fs::read(restored.join("d1/inner/f3.txt")).unwrap(),
        b"dir 1 file 3\n"
    );
    assert!(!restored.join("d3").exists());
    assert!(restored.join("d0/new.txt").exists());
}

#[test]
fn force_full_reads_everything_and_parent_can_be_chosen() {
    let env = Env::new();
    let src = make_tree(&env);
    env.init();
    let first = env.snapshot(&[&src]);
    let _second = env.snapshot(&[&src]);
    let full = env.json(&["snapshot", src.to_str().unwrap(), "--force-full"]);
    assert!(full["parent"].is_null());
    assert_eq!(summary(&full, "files_new"), 100);
    assert!(summary(&full, "bytes_read") > 0);
    // At most the trees of ancestors (the shared temp dir may change meanwhile) are new.
    assert!(
        summary(&full, "blobs_added") <= 2,
        "full re-read still dedupes: {full}"
    );
    let id = first["id"].as_str().unwrap();
    let chosen = env.json(&["snapshot", src.to_str().unwrap(), "--parent", &id[..12]]);
    assert_eq!(chosen["parent"], first["id"]);
    assert_eq!(summary(&chosen, "bytes_read"), 0);
    // A different path set is a different series: no parent.
    let other = env.json(&["snapshot", src.join("d1").to_str().unwrap()]);
    assert!(other["parent"].is_null());
}

#[test]
fn excludes_are_applied_and_recorded() {
    let env = Env::new();
    let src = make_tree(&env);
    fs::write(src.join("d0/junk.tmp"), "x").unwrap();
    fs::write(src.join("d1/inner/keep.tmp"), "x").unwrap();
    fs::create_dir_all(src.join("cache/deep")).unwrap();
    fs::write(src.join("cache/deep/blob"), "x").unwrap();
    fs::create_dir_all(src.join("private")).unwrap();
    fs::write(src.join("private/.nobackup"), "").unwrap();
    fs::write(src.join("private/secret"), "x").unwrap();
    let list = env.path("excludes.txt");
    fs::write(&list, "# comment\n\ncache/\n").unwrap();
    env.init();
    let s = env.json(&[
        "snapshot",
        src.to_str().unwrap(),
        "--exclude",
        "*.tmp",
        "--exclude",
        "!keep.tmp",
        "--exclude-file",
        list.to_str().unwrap(),
        "--exclude-if-present",
        ".nobackup",
    ]);
    assert_eq!(summary(&s, "files_new"), 101, "{s}");
    assert_eq!(
        s["excludes"]["patterns"],
        serde_json::json!(["*.tmp", "!keep.tmp", "cache/"])
    );
    assert_eq!(
        s["excludes"]["if_present"],
        serde_json::json!([".nobackup"])
    );
    let ls = env.ok(&["ls", "latest"]);
    assert!(ls.contains("keep.tmp"));
    for gone in ["junk.tmp", "cache", "private", "secret"] {
        assert!(!ls.contains(gone), "{gone} listed:\n{ls}");
    }
}

/// A directory whose entries all look unchanged is taken whole from the parent without
/// building its entries: every metadata-only change must still be seen (mode, a new hard
/// link, a file replaced by one of the same size and mtime, an extended attribute), and a
/// file excluded now must leave it.
#[test]
fn metadata_changes_and_new_excludes_in_unchanged_looking_directories() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let src = make_tree(&env);
    env.init();
    env.snapshot(&[&src]);
    let second = env.snapshot(&[&src]);
    assert_eq!(summary(&second, "files_unchanged"), 100);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let leaf = |d: u32, f: u32| src.join(format!("d{d}/inner/f{f}.txt"));
    fs::set_permissions(leaf(0, 1), fs::Permissions::from_mode(0o600)).unwrap();
    fs::hard_link(leaf(1, 2), src.join("link_f2")).unwrap();
    let old = fs::metadata(leaf(2, 3)).unwrap();
    let tmp = src.join("d2/tmp");
    fs::write(&tmp, "DIR 2 FILE 3\n").unwrap();
    filetime::set_file_mtime(&tmp, filetime::FileTime::from_last_modification_time(&old)).unwrap();
    fs::rename(&tmp, leaf(2, 3)).unwrap();
    xattr::set(leaf(4, 5), "user.note", b"kept").unwrap();
    let third = env.json(&[
        "snapshot",
        src.to_str().unwrap(),
        "--exclude",
        "**/d3/inner/f4.txt",
    ]);
    assert_eq!(third["parent"], second["id"]);
    assert_eq!(summary(&third, "files_changed"), 4, "{third}");
    assert_eq!(summary(&third, "files_new"), 1, "{third}");
    assert_eq!(summary(&third, "files_unchanged"), 95, "{third}");

    let restored = restore_latest(&env, &src);
    let mode = |p: std::path::PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(restored.join("d0/inner/f1.txt")), 0o600);
    assert_eq!(
        fs::read(restored.join("d2/inner/f3.txt")).unwrap(),
        b"DIR 2 FILE 3\n"
    );
    assert!(!restored.join("d3/inner/f4.txt").exists());
    assert!(restored.join("d3/inner/f5.txt").exists());
    assert_eq!(
        xattr::get(restored.join("d4/inner/f5.txt"), "user.note").unwrap(),
        Some(b"kept".to_vec())
    );
    assert_eq!(
        fs::read(restored.join("link_f2")).unwrap(),
        b"dir 1 file 2\n"
    );
}

#[test]
fn sibling_directories_opened_ahead_give_the_tree_a_full_walk_gives() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let src = env.path("src");
    // More siblings than the walker opens at once, each with files and a subdirectory.
    for d in 0..30 {
        let dir = src.join(format!("s{d:02}"));
        fs::create_dir_all(dir.join("inner")).unwrap();
        for f in 0..4 {
            fs::write(dir.join(format!("f{f}")), format!("{d} {f}\n")).unwrap();
            fs::write(dir.join(format!("inner/g{f}")), format!("inner {d} {f}\n")).unwrap();
        }
    }
    fs::write(src.join("top.txt"), "top\n").unwrap();
    env.init();
    let opts = ["--exclude", "**/s25", "--exclude-if-present", ".nobackup"];
    let snap = |extra: &[&str]| {
        let mut a = vec!["snapshot", src.to_str().unwrap()];
        a.extend(opts);
        a.extend(extra);
        env.json(&a)
    };
    let first = snap(&[]);
    assert_eq!(summary(&first, "files_new"), 30 * 8 - 8 + 1, "{first}");

    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(src.join("s03/f1"), "changed content\n").unwrap();
    fs::write(src.join("s09/inner/new"), "new\n").unwrap();
    fs::remove_dir_all(src.join("s14")).unwrap();
    fs::remove_dir_all(src.join("s05")).unwrap();
    fs::write(src.join("s05"), "a file where a directory was\n").unwrap();
    fs::set_permissions(src.join("s07/f0"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_dir_all(src.join("s20/inner")).unwrap();
    std::os::unix::fs::symlink("../s21", src.join("s20/inner")).unwrap();
    fs::write(src.join("s22/.nobackup"), "").unwrap();
    fs::create_dir_all(src.join("s30/inner")).unwrap();
    fs::write(src.join("s30/inner/h"), "brand new dir\n").unwrap();
    xattr::set(src.join("s28/inner/g2"), "user.k", b"v").unwrap();

    let ahead = snap(&[]);
    assert_eq!(ahead["parent"], first["id"]);
    let full = snap(&["--force-full"]);
    assert!(full["parent"].is_null(), "{full}");
    assert!(summary(&full, "bytes_read") > 0, "{full}");
    assert_eq!(
        tree_of(&env, ahead["id"].as_str().unwrap(), &src),
        tree_of(&env, full["id"].as_str().unwrap(), &src),
        "the walk with its parent and siblings opened ahead differs from a full walk"
    );
    // s03/f1, s07/f0 (mode), s28/inner/g2 (xattr) changed; s09/inner/new, s05, s30/inner/h
    // new; s14, s05 and s20/inner (8 + 8 + 4 files) and s22 (marked, 8) gone.
    assert_eq!(summary(&ahead, "files_changed"), 3, "{ahead}");
    assert_eq!(summary(&ahead, "files_new"), 3, "{ahead}");
    assert_eq!(summary(&ahead, "files_removed"), 28, "{ahead}");

    let restored = restore_latest(&env, &src);
    assert_eq!(
        fs::read(restored.join("s03/f1")).unwrap(),
        b"changed content\n"
    );
    assert_eq!(
        fs::read(restored.join("s05")).unwrap(),
        b"a file where a directory was\n"
    );
    assert!(!restored.join("s14").exists() && !restored.join("s25").exists());
    assert!(fs::symlink_metadata(restored.join("s20/inner"))
        .unwrap()
        .is_symlink());
    assert_eq!(
        fs::read(restored.join("s30/inner/h")).unwrap(),
        b"brand new dir\n"
    );
    assert_eq!(
        fs::read(restored.join("s29/inner/g3")).unwrap(),
        b"inner 29 3\n"
    );
}

/// Removes a file when dropped (also when the test fails).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn one_file_system_keeps_mount_points_empty_with_and_without_a_parent() {
    use std::os::unix::fs::MetadataExt;
    // /dev/shm is a tmpfs mounted inside /dev in every Linux container and host.
    let dev = fs::metadata("/dev").unwrap().dev();
    let shm = fs::metadata("/dev/shm").expect("/dev/shm is needed by this test");
    assert_ne!(shm.dev(), dev, "/dev/shm must be a file system of its own");
    let marker = format!("repo-one-fs-{}", std::process::id());
    let file = RemoveOnDrop(std::path::Path::new("/dev/shm").join(&marker));
    fs::write(&file.0, "on another file system\n").unwrap();

    let env = Env::new();
    env.init();
    let shm_listing = |extra: &[&str]| {
        let mut a = vec!["snapshot", "/dev"];
        a.extend(extra);
        let s = env.json(&a);
        env.ok(&["ls", s["id"].as_str().unwrap(), "/dev/shm"])
    };
    // Without the option the file is there: the check below can see it.
    assert!(shm_listing(&["--force-full"]).contains(&marker));
    // With it, /dev/shm is kept as an empty directory, walked fresh and with a parent
    // (whose siblings are then opened ahead).
    for _ in 0..2 {
        let listing = shm_listing(&["--one-file-system"]);
        assert!(!listing.contains(&marker), "{listing}");
    }
}

/// Restores the latest snapshot into a fresh directory; where `src` landed in it.
fn restore_latest(env: &Env, src: &std::path::Path) -> std::path::PathBuf {
    let out = env.path("out");
    env.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    out.join(src.strip_prefix("/").unwrap())
}
