//! `repo dump`: a file as its bytes, a directory as a tar archive that unpacks to the
//! source (modes, times, symlinks, odd names), the whole snapshot, a closed pipe ended
//! quietly, and clear errors for paths that are not there.

use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use crate::common::{assert_same_tree, write_big_file, Env};

/// `repo dump latest DIR | tar TAR_ARGS -x -C unpacked`; returns `unpacked`.
fn dump_unpacked(env: &Env, dir: &std::path::Path, tar_args: &[&str]) -> std::path::PathBuf {
    let unpacked = env.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let mut dump = env
        .cmd(&["dump", "latest", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let st = Command::new("tar")
        .args(tar_args)
        .arg("-x")
        .arg("-C")
        .arg(&unpacked)
        .stdin(dump.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(st.success() && dump.wait().unwrap().success());
    unpacked
}

#[test]
fn dump_writes_files_and_directories_that_equal_the_source() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    let dir = data.join("proj ü/src");
    std::fs::create_dir_all(dir.join("deep")).unwrap();
    write_big_file(&dir.join("big.bin"), 5 << 20, 3);
    std::fs::write(dir.join("a \"quoted\" name.txt"), "a\n").unwrap();
    std::fs::write(dir.join("deep/empty"), "").unwrap();
    std::os::unix::fs::symlink("../big.bin", dir.join("deep/link")).unwrap();
    let exe = dir.join("run.sh");
    std::fs::write(&exe, "#!/bin/sh\n").unwrap();
    let mut perm = std::fs::metadata(&exe).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o750);
    std::fs::set_permissions(&exe, perm).unwrap();
    // Names (and a link target) that are not UTF-8, two of them alike but for an invalid
    // byte: the archive keeps each exactly.
    let raw = |b: &[u8]| dir.join(std::ffi::OsStr::from_bytes(b));
    std::fs::write(raw(b"x\xff"), "ff\n").unwrap();
    std::fs::write(raw(b"x\xfe"), "fe\n").unwrap();
    std::fs::create_dir(raw(b"d\xe9")).unwrap();
    std::fs::write(raw(b"d\xe9/in\x80"), "in").unwrap();
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(b"t\xff"), raw(b"l\xfe")).unwrap();
    env.snapshot(&[&data]);

    // A file: its bytes.
    let big = dir.join("big.bin");
    let out = env.run(&["dump", "latest", big.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == std::fs::read(&big).unwrap(),
        "file bytes differ"
    );

    // A directory: a tar archive of it, by its own name.
    let unpacked = dump_unpacked(&env, &dir, &[]);
    assert_same_tree(&dir, &unpacked.join("src"));

    // The whole snapshot.
    let all = env.path("all");
    std::fs::create_dir_all(&all).unwrap();
    let tarball = env.path("all.tar");
    let out = env.run(&["dump", "latest", "/"]);
    assert!(out.status.success());
    std::fs::write(&tarball, &out.stdout).unwrap();
    assert!(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&all)
        .status()
        .unwrap()
        .success());
    assert_same_tree(&data, &all.join(data.strip_prefix("/").unwrap()));

    // A reader that stops early: no panic, no error.
    let mut dump = env
        .cmd(&["dump", "latest", big.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(dump.stdout.take());
    let out = dump.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Not there: a clear error and a non-zero exit.
    let missing = data.join("nope");
    let out = env.run(&["dump", "latest", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn listing_into_a_closed_pipe_ends_quietly() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..3000 {
        std::fs::write(
            data.join(format!("a-rather-long-file-name-to-fill-the-pipe-{i:05}")),
            "x",
        )
        .unwrap();
    }
    env.snapshot(&[&data]);
    for args in [
        vec!["ls", "latest", "/"],
        vec!["ls", "-l", "latest", "/"],
        vec!["find", "*file-name*"],
    ] {
        let mut c = env
            .cmd(&args)
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line, as `| head -1` does, then go away.
        let mut out = c.stdout.take().unwrap();
        let mut first = [0u8; 64];
        let n = std::io::Read::read(&mut out, &mut first).unwrap();
        assert!(n > 0);
        drop(out);
        let o = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} printed: {err}");
    }
}

#[test]
fn dump_a_collection_as_json_lines_bson_and_index_specs() {
    use mongodb::bson::{Bson, Document};
    let Some((uri, client)) = crate::common::mongo_server() else {
        return;
    };
    let name = crate::common::unique_db("dumpc");
    let docs = crate::common::odd_users(&client, &name, 500);
    let env = Env::new();
    env.init();
    env.ok(&["snapshot", &uri, &format!("--db={name}")]);
    let ns = format!("{name}.odd name.users");

    let out = env.run(&["dump", "latest", "--mongodb", &ns]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Document> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            match Bson::try_from(v).unwrap() {
                Bson::Document(d) => d,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(got, docs, "JSON lines round-trip to the documents");

    let out = env.run(&["dump", "latest", "--mongodb", &ns, "--format", "bson"]);
    let mut raw = out.stdout.as_slice();
    let mut from_bson = Vec::new();
    while !raw.is_empty() {
        from_bson.push(Document::from_reader(&mut raw).unwrap());
    }
    assert_eq!(from_bson, docs, "the BSON stream is the documents");

    let v: serde_json::Value = serde_json::from_slice(
        &env.run(&["dump", "latest", "--mongodb", &ns, "--format", "indexes"])
            .stdout,
    )
    .unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["_id_", "when_-1"]);

    let out = env.run(&["dump", "latest", "--mongodb", &format!("{name}.nope")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("odd name.users"),
        "{err}"
    );
    client.database(&name).drop().run().unwrap();
}

#[test]
fn dump_at_a_moment_reads_the_snapshot_of_that_moment() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    let f = data.join("notes.txt");
    std::fs::write(&f, "first\n").unwrap();
    let first = env.snapshot(&[&data]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    std::fs::write(&f, "second\n").unwrap();
    env.snapshot(&[&data]);
    let list = env.json(&["snapshots"]);
    let t1: chrono::DateTime<chrono::Utc> = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == first["id"])
        .unwrap()["time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let between = (t1 + chrono::Duration::seconds(1)).to_rfc3339();
    let file = f.to_str().unwrap();

    let out = env.run(&["dump", "--at", &between, file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"first\n");
    let out = env.run(&["dump", "latest", "--at", &between, file]);
    assert_eq!(out.stdout, b"first\n");
    assert_eq!(env.run(&["dump", "--at", "now", file]).stdout, b"second\n");

    // Before the first snapshot: nothing to read; an id and --at together: refused.
    let before = (t1 - chrono::Duration::hours(1)).to_rfc3339();
    let out = env.run(&["dump", "--at", &before, file]);
    assert!(!out.status.success() && out.stdout.is_empty());
    let id = first["id"].as_str().unwrap();
    let out = env.run(&["dump", id, file, "--at", &between]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("not both"), "{e}");
}

/// Fifos, devices, hard links and extended attributes come out of `dump` as tar records
/// GNU tar recreates (as root; `--xattrs` for the attributes), not left out or copied.
#[test]
fn dump_keeps_fifos_devices_hard_links_and_extended_attributes() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let env = Env::new();
    env.init();
    let dir = env.path("data/special");
    std::fs::create_dir_all(&dir).unwrap();
    let made = |args: &[&str]| {
        let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
        assert!(st.success(), "{args:?}");
    };
    made(&["mkfifo", dir.join("pipe").to_str().unwrap()]);
    made(&["mknod", dir.join("chr").to_str().unwrap(), "c", "1", "3"]);
    // A minor above 255 and a major above 255: both halves of Linux's split encoding.
    made(&[
        "mknod",
        dir.join("blk").to_str().unwrap(),
        "b",
        "259",
        "300",
    ]);
    std::fs::write(dir.join("noted"), "body\n").unwrap();
    xattr::set(dir.join("noted"), "user.note", b"kept \x00\xff").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::hard_link(dir.join("noted"), dir.join("sub/also noted")).unwrap();
    std::fs::hard_link(dir.join("noted"), dir.join("zz")).unwrap();
    env.snapshot(&[&dir]);

    let got = dump_unpacked(&env, &dir, &["--xattrs", "--xattrs-include=*"]).join("special");
    let meta = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap();
    // Compares hard-link groups too: the three names are one file again.
    assert_same_tree(&dir, &got);
    assert_eq!(meta(&got.join("noted")).nlink(), 3);
    assert!(meta(&got.join("pipe")).file_type().is_fifo());
    assert!(meta(&got.join("chr")).file_type().is_char_device());
    assert!(meta(&got.join("blk")).file_type().is_block_device());
    for name in ["chr", "blk"] {
        assert_eq!(
            meta(&dir.join(name)).rdev(),
            meta(&got.join(name)).rdev(),
            "device number of {name}"
        );
    }
    assert_eq!(
        xattr::get(got.join("noted"), "user.note").unwrap(),
        Some(b"kept \x00\xff".to_vec())
    );
}
