//! `repo scan`: missing, new, modified, corrupted and duplicate files against a snapshot.

use std::fs;

use crate::common::Env;

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn scan_classifies_and_exit_code_says_lost() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    for n in ["keep", "gone", "edit", "rot"] {
        fs::write(src.join(n), format!("content of {n}\n")).unwrap();
    }
    fs::write(src.join("sub/copy1"), "same bytes\n").unwrap();
    fs::write(src.join("sub/copy2"), "same bytes\n").unwrap();
    env.init();
    env.snapshot(&[&src]);
    let p = src.to_str().unwrap();
    // Nothing changed: exit 0.
    let clean = env.run(&["scan", p, "--read", "--json"]);
    assert_eq!(clean.status.code(), Some(0));

    fs::remove_file(src.join("gone")).unwrap();
    fs::write(src.join("edit"), "edited, and longer\n").unwrap();
    fs::write(src.join("fresh"), "new\n").unwrap();
    let rot = src.join("rot");
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&rot).unwrap());
    fs::write(&rot, "CONTENT OF ROT\n").unwrap();
    filetime::set_file_mtime(&rot, mtime).unwrap();

    let out = env.run(&["scan", p, "--json"]);
    assert_eq!(out.status.code(), Some(4), "missing file means lost");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&r["missing"]), ["gone"]);
    assert_eq!(names(&r["new"]), ["fresh"]);
    assert_eq!(names(&r["modified"]), ["edit"]);
    assert!(r["corrupted"].as_array().unwrap().is_empty(), "not read");
    assert_eq!(r["duplicates"].as_array().unwrap().len(), 1);

    let out = env.run(&["scan", p, "--read", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&r["corrupted"]), ["rot"]);
    let text = env.run(&["scan", p, "--read"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("repo restore") && text.contains("LOST"),
        "{text}"
    );
}

/// A tree deeper than `PATH_MAX` (4096 bytes) with a name that is not UTF-8 at the bottom:
/// the live side is read relative to open directories, as backups read it. Opening
/// each file by its whole path failed there, so every file below 4 KiB of path was
/// "missing" (exit 4) although the tree was intact.
#[test]
fn scan_reads_trees_deeper_than_path_max() {
    use repo::dirfd;
    use std::ffi::OsStr;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;

    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut dir = dirfd::open_dir(&src).unwrap();
    let name = OsStr::new(&*"d".repeat(200)).to_os_string();
    let mut depth_bytes = 0;
    for i in 0..30 {
        dirfd::mkdir_at(dir.as_fd(), &name).unwrap();
        dir = dirfd::open_dir_at(dir.as_fd(), &name).unwrap();
        depth_bytes += 201;
        if i % 10 == 9 {
            let mut f = dirfd::create_at(dir.as_fd(), OsStr::new(&format!("f{i}"))).unwrap();
            f.write_all(format!("at depth {i}\n").as_bytes()).unwrap();
        }
    }
    assert!(depth_bytes > 4096);
    let mut leaf = dirfd::create_at(dir.as_fd(), OsStr::from_bytes(b"leaf\xff")).unwrap();
    leaf.write_all(b"the bottom\n").unwrap();
    drop(leaf);
    env.init();
    env.snapshot(&[&src]);
    let p = src.to_str().unwrap();

    let out = env.run(&["scan", p, "--read", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(r["files_read"], 4, "{r}");
    for list in ["missing", "new", "modified", "corrupted", "unreadable"] {
        assert!(r[list].as_array().unwrap().is_empty(), "{list}: {r}");
    }

    // The bottom file edited (longer), and one more added beside it: found, by path.
    dirfd::unlink_at(dir.as_fd(), OsStr::from_bytes(b"leaf\xff")).unwrap();
    let mut leaf = dirfd::create_at(dir.as_fd(), OsStr::from_bytes(b"leaf\xff")).unwrap();
    leaf.write_all(b"the bottom, edited\n").unwrap();
    dirfd::create_at(dir.as_fd(), OsStr::new("fresh")).unwrap();
    let out = env.run(&["scan", p, "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "modified and new lose nothing: {r}"
    );
    assert_eq!(names(&r["modified"]), ["leaf\\xff"]);
    assert_eq!(names(&r["new"]), ["fresh"]);
    assert!(r["missing"].as_array().unwrap().is_empty(), "{r}");
}
