//! Incremental snapshots: unchanged files are not read, changes are counted, excludes work.

use std::fs;

use crate::common::Env;

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
    let out = env.path("out");
    env.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    let restored = out.join(src.strip_prefix("/").unwrap());
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
