//! Snapshot → restore reproduces a tree byte for byte, with metadata.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::common::{assert_same_tree, is_root, random_bytes, write_big_file, Env};

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds a tree with every kind of entry the format supports.
fn build_tree(root: &Path) -> bool {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("empty-file"), b"").unwrap();
    fs::write(root.join("a/hello.txt"), b"hello world\n").unwrap();
    write_big_file(&root.join("a/b/big.bin"), 200 * 1024 * 1024, 7);
    for d in 0..20 {
        let dir = root.join(format!("many/d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let len = (d * 100 + f) * 37 % 5000;
            fs::write(
                dir.join(format!("f{f:03}.txt")),
                random_bytes(len, (d * 1000 + f) as u64),
            )
            .unwrap();
        }
    }
    symlink("hello.txt", root.join("a/link-to-hello")).unwrap();
    symlink("does/not/exist", root.join("a/dangling")).unwrap();
    symlink("/etc/passwd", root.join("a/absolute-link")).unwrap();
    fs::write(root.join("a/linked"), b"shared by three names").unwrap();
    fs::hard_link(root.join("a/linked"), root.join("a/b/linked-2")).unwrap();
    fs::hard_link(root.join("a/linked"), root.join("linked-3")).unwrap();
    let latin1 = OsStr::from_bytes(b"caf\xe9");
    fs::write(root.join(latin1), b"non-utf8 name").unwrap();
    fs::create_dir(root.join(OsStr::from_bytes(b"dir-\xff\xfe"))).unwrap();
    fs::write(root.join(OsStr::from_bytes(b"dir-\xff\xfe/inner")), b"x").unwrap();
    nix::unistd::mkfifo(
        &root.join("a/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    fs::write(root.join("a/setuid"), b"#!/bin/sh\n").unwrap();
    set_mode(&root.join("a/setuid"), 0o4751);
    fs::write(root.join("a/private"), b"secret").unwrap();
    set_mode(
        &root.join("a/private"),
        if is_root() { 0o000 } else { 0o400 },
    );
    fs::create_dir(root.join("sticky")).unwrap();
    set_mode(&root.join("sticky"), 0o1777);
    fs::write(root.join("a/b/c/readonly-dir-child"), b"y").unwrap();
    set_mode(&root.join("a/b/c"), 0o555);
    let xattr_ok = xattr::set(root.join("a/hello.txt"), "user.repo-test", b"value").is_ok();
    // Distinct, nanosecond-precise mtimes, including one before 1970.
    let t = filetime::FileTime::from_unix_time(1_234_567_890, 123_456_789);
    filetime::set_file_mtime(root.join("a/hello.txt"), t).unwrap();
    let old = filetime::FileTime::from_unix_time(-86_400, 5);
    filetime::set_file_mtime(root.join("empty-file"), old).unwrap();
    xattr_ok
}

#[test]
fn full_tree_round_trips() {
    let env = Env::new();
    let src = env.path("src");
    let xattr_ok = build_tree(&src);
    env.init();
    let snap = env.snapshot(&[&src]);
    let s = &snap["summary"];
    assert_eq!(s["skipped"].as_array().unwrap().len(), 0, "{snap}");
    assert!(s["bytes_read"].as_u64().unwrap() >= 200 * 1024 * 1024);
    let id = snap["id"].as_str().unwrap();

    let target = env.path("restore");
    env.ok(&["restore", &id[..8], "--target", target.to_str().unwrap()]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_same_tree(&src, &restored);
    if xattr_ok {
        assert_eq!(
            xattr::get(restored.join("a/hello.txt"), "user.repo-test")
                .unwrap()
                .as_deref(),
            Some(&b"value"[..])
        );
    }

    // ls shows the tree, including the non-UTF-8 names (lossily).
    let listing = env.ok(&["ls", "latest", src.join("a").to_str().unwrap()]);
    assert!(listing.contains("/a/hello.txt"), "{listing}");
    assert!(listing.contains("/a/b/big.bin"));
    let entries = env.json(&["ls", id, src.join("a/b").to_str().unwrap()]);
    let big = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("big.bin"))
        .unwrap();
    assert_eq!(big["size"], 200 * 1024 * 1024);
    assert_eq!(big["type"], "file");

    // Selective restore of one subdirectory.
    let part = env.path("part");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        part.to_str().unwrap(),
        "--include",
        src.join("many/d03").to_str().unwrap(),
    ]);
    let base = part.join(src.strip_prefix("/").unwrap());
    assert_same_tree(&src.join("many/d03"), &base.join("many/d03"));
    assert!(!base.join("many/d04").exists());
    assert!(!base.join("a").exists());

    // check passes on a healthy repository, with and without reading data.
    env.ok(&["check"]);
    env.ok(&["check", "--read-data"]);
    set_mode(&src.join("a/b/c"), 0o755);
    set_mode(&restored.join("a/b/c"), 0o755);
}

#[test]
fn snapshots_json_shape_and_multiple_paths() {
    let env = Env::new();
    let one = env.path("one");
    let two = env.path("two/nested");
    fs::create_dir_all(&one).unwrap();
    fs::create_dir_all(&two).unwrap();
    fs::write(one.join("x"), b"1").unwrap();
    fs::write(two.join("y"), b"2").unwrap();
    env.init();
    let out = env.json(&[
        "snapshot",
        one.to_str().unwrap(),
        two.to_str().unwrap(),
        "--tag",
        "daily",
        "--tag",
        "test",
    ]);
    let list = env.json(&["snapshots"]);
    let arr = list.as_array().unwrap();
    assert_eq!(arr.len(), 1);
    let s = &arr[0];
    assert_eq!(s["id"], out["id"]);
    for key in [
        "id", "time", "host", "source", "paths", "tags", "parent", "summary", "tree",
    ] {
        assert!(s.get(key).is_some(), "missing {key} in {s}");
    }
    assert!(s["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["source"]["kind"], "files");
    assert_eq!(s["tags"], serde_json::json!(["daily", "test"]));
    assert_eq!(s["paths"].as_array().unwrap().len(), 2);
    assert_eq!(s["summary"]["files_new"], 2);

    let target = env.path("t");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(
        fs::read(target.join(one.strip_prefix("/").unwrap()).join("x")).unwrap(),
        b"1"
    );
    assert_eq!(
        fs::read(target.join(two.strip_prefix("/").unwrap()).join("y")).unwrap(),
        b"2"
    );
    let table = env.ok(&["snapshots"]);
    assert!(table.contains(&out["id"].as_str().unwrap()[..8]), "{table}");
    assert!(table.contains("daily,test"));
}

/// A command on the default repository: no location and no password given.
fn on_default(env: &Env, args: &[&str]) -> std::process::Command {
    let mut c = env.cmd(args);
    c.env_remove("REPO_REPOSITORY").env_remove("REPO_PASSWORD");
    c
}

/// The default repository's snapshots, read with its generated password.
fn default_snapshots(env: &Env) -> Vec<serde_json::Value> {
    let out = on_default(env, &["snapshots", "--json"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("NOTICE"), "{err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn default_repository_is_created_on_first_use_without_prompt() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    let out = on_default(&env, &["snapshot", src.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("default.key"), "{stderr}");
    let key = env.path("home/config/repo/default.key");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(env.path("home/data/repo/default/config").exists());
    // Second use: no notice, same key, snapshot listed.
    assert_eq!(default_snapshots(&env).len(), 1);
}

/// Several commands using the default repository for the first time at once (timers on a
/// fresh machine): one password is generated and kept, one repository created, and every
/// snapshot is saved and readable with that password.
#[test]
fn first_uses_of_the_default_repository_at_once_share_one_repository() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    let runs: Vec<_> = (0..5)
        .map(|_| {
            on_default(&env, &["snapshot", src.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
    }
    assert_eq!(default_snapshots(&env).len(), 5);
    let keys = fs::read_dir(env.path("home/data/repo/default/keys")).unwrap();
    assert_eq!(keys.count(), 1);
}
