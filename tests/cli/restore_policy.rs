//! Restore into a non-empty target: dry run, conflict policies, resume, sparse files.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::common::Env;

struct Setup {
    env: Env,
    out: PathBuf,
    /// Where the source appears inside `out`.
    inside: PathBuf,
}

fn setup() -> Setup {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), "snapshot a\n").unwrap();
    fs::write(src.join("b.txt"), "snapshot b\n").unwrap();
    fs::write(src.join("c.txt"), "snapshot c\n").unwrap();
    env.init();
    env.snapshot(&[&src]);
    let out = env.path("out");
    let inside = out.join(src.strip_prefix("/").unwrap());
    Setup { env, out, inside }
}

fn restore(s: &Setup, extra: &[&str]) -> serde_json::Value {
    let mut a = vec!["restore", "latest", "--target", s.out.to_str().unwrap()];
    a.extend_from_slice(extra);
    s.env.json(&a)
}

#[test]
fn dry_run_writes_nothing_and_policies_decide() {
    let s = setup();
    // First restore, then change the target.
    restore(&s, &[]);
    fs::write(s.inside.join("a.txt"), "local edit, longer\n").unwrap();
    fs::remove_file(s.inside.join("b.txt")).unwrap();
    let plan = restore(&s, &["--dry-run"]);
    let actions: Vec<(String, String)> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = f["path"].as_str().unwrap();
            let name = p.rsplit('/').next().unwrap().to_string();
            (name, f["action"].to_string())
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("a.txt".into(), "\"overwrite\"".into()),
            ("b.txt".into(), "\"create\"".into()),
            ("c.txt".into(), "\"up-to-date\"".into()),
        ]
    );
    assert_eq!(plan["bytes"], 22);
    assert!(!s.inside.join("b.txt").exists(), "dry run wrote a file");
    assert_eq!(
        fs::read_to_string(s.inside.join("a.txt")).unwrap(),
        "local edit, longer\n"
    );

    // skip keeps the edit but creates the missing file.
    let r = restore(&s, &["--conflict", "skip"]);
    assert_eq!(
        (r["files"].as_u64(), r["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        fs::read_to_string(s.inside.join("a.txt")).unwrap(),
        "local edit, longer\n"
    );
    assert_eq!(
        fs::read_to_string(s.inside.join("b.txt")).unwrap(),
        "snapshot b\n"
    );

    // rename keeps both.
    let r = restore(&s, &["--conflict", "rename"]);
    assert_eq!(r["renamed"], 1);
    assert_eq!(
        fs::read_to_string(s.inside.join("a.txt.restored")).unwrap(),
        "snapshot a\n"
    );
    assert_eq!(
        fs::read_to_string(s.inside.join("a.txt")).unwrap(),
        "local edit, longer\n"
    );

    // if-newer: the local edit is newer than the snapshot copy, so it stays.
    let r = restore(&s, &["--conflict", "if-newer"]);
    assert_eq!(r["skipped"], 1);

    // overwrite replaces; a second run finds everything up to date and writes nothing.
    let r = restore(&s, &["--conflict", "overwrite"]);
    assert_eq!(r["overwritten"], 1);
    assert_eq!(
        fs::read_to_string(s.inside.join("a.txt")).unwrap(),
        "snapshot a\n"
    );
    let r = restore(&s, &[]);
    assert_eq!(
        (r["files"].as_u64(), r["up_to_date"].as_u64()),
        (Some(0), Some(3))
    );
}

#[test]
fn if_changed_and_verify_existing_detect_same_size_edits() {
    let s = setup();
    restore(&s, &[]);
    let a = s.inside.join("a.txt");
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&a).unwrap());
    // Same size, same mtime, different bytes: only hashing can tell.
    fs::write(&a, "SNAPSHOT A\n").unwrap();
    filetime::set_file_mtime(&a, mtime).unwrap();
    let r = restore(&s, &[]);
    assert_eq!(r["up_to_date"], 3, "size+mtime says up to date");
    assert_eq!(fs::read_to_string(&a).unwrap(), "SNAPSHOT A\n");
    let r = restore(&s, &["--verify-existing"]);
    assert_eq!(r["overwritten"], 1);
    assert_eq!(fs::read_to_string(&a).unwrap(), "snapshot a\n");
    // if-changed: a touched but identical file is not rewritten.
    let ino = fs::metadata(s.inside.join("b.txt")).unwrap().ino();
    filetime::set_file_mtime(
        s.inside.join("b.txt"),
        filetime::FileTime::from_unix_time(1, 0),
    )
    .unwrap();
    let r = restore(&s, &["--conflict", "if-changed"]);
    assert_eq!(r["files"], 0);
    assert_eq!(fs::metadata(s.inside.join("b.txt")).unwrap().ino(), ino);
}

#[test]
fn zero_runs_are_restored_as_holes() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let f = src.join("sparse.img");
    let mut data = vec![0u8; 32 << 20];
    data[..4096].fill(7);
    let n = data.len();
    data[n - 4096..].fill(9);
    fs::write(&f, &data).unwrap();
    env.init();
    env.snapshot(&[&src]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    let r = out.join(f.strip_prefix("/").unwrap());
    assert_eq!(fs::read(&r).unwrap(), data);
    let md = fs::metadata(&r).unwrap();
    assert!(
        md.blocks() * 512 < (8 << 20),
        "{} bytes allocated for a mostly-zero 32 MiB file",
        md.blocks() * 512
    );
}

#[test]
fn restore_exclude_globs_leave_entries_out() {
    let s = setup();
    let r = restore(&s, &["--exclude", "b.*"]);
    assert_eq!(r["files"], 2);
    assert!(!s.inside.join("b.txt").exists());
    assert!(s.inside.join("a.txt").exists());
    let bad = s.env.run(&[
        "restore",
        "latest",
        "--target",
        "/nonexistent-x",
        "--exclude",
        "a[",
    ]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn delete_removes_only_what_the_snapshot_lacks() {
    let s = setup();
    restore(&s, &[]);
    fs::write(s.inside.join("stray.txt"), "not in the snapshot\n").unwrap();
    fs::create_dir_all(s.inside.join("junk/deeper")).unwrap();
    fs::write(s.inside.join("junk/deeper/x"), "x").unwrap();
    fs::write(s.inside.join("a.txt"), "local edit\n").unwrap();
    // Outside the restored path: never touched while only that path is restored.
    let outside = s.out.join("outside.txt");
    fs::write(&outside, "keep me").unwrap();
    let src = format!("/{}", s.inside.strip_prefix(&s.out).unwrap().display());

    let plan = restore(&s, &[&src, "--delete", "--dry-run"]);
    let deletes: Vec<&str> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "delete")
        .map(|f| f["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(deletes, vec!["junk", "stray.txt"]);
    assert!(s.inside.join("stray.txt").exists(), "dry run deleted");

    // Entries matching --exclude are left alone.
    let r = restore(&s, &[&src, "--delete", "--exclude", "stray.txt"]);
    assert_eq!(r["deleted"], 1);
    assert!(s.inside.join("stray.txt").exists());
    assert!(!s.inside.join("junk").exists());
    assert_eq!(
        fs::read_to_string(s.inside.join("a.txt")).unwrap(),
        "snapshot a\n"
    );
    let r = restore(&s, &[&src, "--delete"]);
    assert_eq!(r["deleted"], 1);
    assert!(!s.inside.join("stray.txt").exists());
    assert!(outside.exists(), "deleted outside the restored paths");
    assert!(s.inside.join("b.txt").exists());
    // The whole snapshot with --delete mirrors it: the target root is cleaned too.
    let r = restore(&s, &["--delete"]);
    assert_eq!(r["deleted"], 1);
    assert!(!outside.exists());
}

#[test]
fn include_globs_select_matching_entries_and_their_parents() {
    let env = Env::new();
    let src = env.path("g");
    fs::create_dir_all(src.join("docs/deep")).unwrap();
    fs::create_dir_all(src.join("empty")).unwrap();
    fs::create_dir_all(src.join("logs")).unwrap();
    fs::write(src.join("docs/report.pdf"), "pdf1").unwrap();
    fs::write(src.join("docs/deep/old.pdf"), "pdf2").unwrap();
    fs::write(src.join("docs/notes.txt"), "txt").unwrap();
    fs::write(src.join("logs/app.log"), "log").unwrap();
    env.init();
    env.snapshot(&[&src]);
    let out = env.path("gout");
    let inside = out.join(src.strip_prefix("/").unwrap());
    let r = env.json(&[
        "restore",
        "latest",
        "--target",
        out.to_str().unwrap(),
        "--include",
        "*.pdf",
    ]);
    assert_eq!(r["files"], 2);
    assert!(inside.join("docs/report.pdf").exists());
    assert!(inside.join("docs/deep/old.pdf").exists());
    assert!(!inside.join("docs/notes.txt").exists());
    assert!(
        !inside.join("logs").exists(),
        "created a directory with nothing selected"
    );
    assert!(!inside.join("empty").exists());

    // A path glob selects a directory with everything below it.
    let out2 = env.path("gout2");
    let glob = format!("{}/d*", src.display());
    let r = env.json(&[
        "restore",
        "latest",
        "--target",
        out2.to_str().unwrap(),
        "--include",
        &glob,
    ]);
    assert_eq!(r["files"], 3);
    let inside2 = out2.join(src.strip_prefix("/").unwrap());
    assert!(inside2.join("docs/notes.txt").exists());

    // A glob that matches nothing is an error, not an empty success.
    let o = env.run(&[
        "restore",
        "latest",
        "--target",
        out2.to_str().unwrap(),
        "--include",
        "*.nothing",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("matches"));
}

#[test]
fn delete_replaces_a_directory_where_the_snapshot_has_a_file_or_symlink() {
    let s = setup();
    let src = s.env.path("src");
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    s.env.snapshot(&[&src]);
    restore(&s, &[]);
    // The target grew directories where the snapshot has a file and a symlink.
    for name in ["b.txt", "link"] {
        let p = s.inside.join(name);
        fs::remove_file(&p).unwrap();
        fs::create_dir_all(p.join("sub")).unwrap();
        fs::write(p.join("sub/local"), "local").unwrap();
    }
    let out = s.out.to_str().unwrap();
    // Without --delete: refused, saying how, and nothing of the directories is lost.
    let r = s.env.run(&["restore", "latest", "--target", out]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("is a directory in the target") && err.contains("--delete"),
        "{err}"
    );
    assert!(s.inside.join("b.txt/sub/local").exists());
    // With --delete, but one holds an excluded entry: that one is kept and refused.
    let r = s.env.run(&[
        "restore",
        "latest",
        "--target",
        out,
        "--delete",
        "--exclude",
        "/**/link/sub",
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(s.inside.join("link/sub/local").exists());
    assert_eq!(
        fs::read_to_string(s.inside.join("b.txt")).unwrap(),
        "snapshot b\n"
    );
    // With --delete: both replaced, the dry run saying so first.
    let plan = restore(&s, &["--delete", "--dry-run"]);
    assert!(
        plan.to_string().contains("link\",\"action\":\"delete"),
        "{plan}"
    );
    let r = restore(&s, &["--delete"]);
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(
        fs::read_link(s.inside.join("link")).unwrap(),
        PathBuf::from("a.txt")
    );
}

#[test]
fn hard_links_are_restored_as_the_snapshot_has_them_over_an_existing_target() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("b"), "shared content\n").unwrap();
    fs::write(src.join("x"), "same bytes\n").unwrap();
    fs::write(src.join("y"), "same bytes\n").unwrap();
    let t = fs::metadata(src.join("x")).unwrap().modified().unwrap();
    fs::File::options()
        .write(true)
        .open(src.join("y"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    env.init();
    env.snapshot(&[&src]);
    let out = env.path("out");
    let inside = out.join(src.strip_prefix("/").unwrap());
    let o = out.to_str().unwrap();
    env.json(&["restore", "latest", "--target", o]);
    // The source gains a link `a` of `b`; the target meanwhile has x and y as one file.
    fs::hard_link(src.join("b"), src.join("a")).unwrap();
    env.snapshot(&[&src]);
    fs::remove_file(inside.join("y")).unwrap();
    fs::hard_link(inside.join("x"), inside.join("y")).unwrap();
    let r = env.json(&["restore", "latest", "--target", o]);
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    let ino = |n: &str| fs::metadata(inside.join(n)).unwrap().ino();
    assert_eq!(ino("a"), ino("b"), "a and b are one file again");
    assert_ne!(
        ino("x"),
        ino("y"),
        "x and y are separate files, as in the snapshot"
    );
    fs::write(inside.join("x"), "changed\n").unwrap();
    assert_eq!(
        fs::read_to_string(inside.join("y")).unwrap(),
        "same bytes\n"
    );
    assert_eq!(
        fs::read_to_string(inside.join("a")).unwrap(),
        "shared content\n"
    );
}

/// Files with holes are read without reading the holes (`SEEK_DATA`/`SEEK_HOLE`); they
/// must come back byte for byte: data of odd lengths at odd offsets between a leading and
/// a trailing hole, then data written into a hole and backed up again.
#[test]
fn files_with_holes_back_up_and_restore_exactly() {
    use std::io::{Seek, SeekFrom, Write};
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let img = src.join("disk.img");
    let mut f = fs::File::create(&img).unwrap();
    f.set_len(40 << 20).unwrap();
    let mut write_at = |at: u64, len: usize, seed: u64| {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&crate::common::random_bytes(len, seed))
            .unwrap();
        f.sync_all().unwrap();
    };
    for (i, (at, len)) in [
        (3 << 20, 5000),
        ((9 << 20) + 1, 300_000),
        ((20 << 20) - 7, 14),
        ((33 << 20) + 4095, 1 << 20),
    ]
    .into_iter()
    .enumerate()
    {
        write_at(at, len, i as u64 + 1);
    }
    env.init();
    let out = env.path("out");
    let restored = out.join(img.strip_prefix("/").unwrap());
    let first = env.snapshot(&[&src]);
    // 1.3 MB of random data; the zeros compress to nearly nothing.
    let added = first["summary"]["bytes_added"].as_u64().unwrap();
    assert!(added < 4 << 20, "{added} bytes stored for 1.3 MB of data");
    env.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert!(fs::read(&restored).unwrap() == fs::read(&img).unwrap());

    write_at(12 << 20, 70_000, 9);
    let second = env.snapshot(&[&src]);
    assert_eq!(second["summary"]["files_changed"], 1, "{second}");
    let target = out.to_str().unwrap();
    env.ok(&[
        "restore",
        "latest",
        "--target",
        target,
        "--conflict",
        "overwrite",
    ]);
    assert!(fs::read(&restored).unwrap() == fs::read(&img).unwrap());
    env.ok(&["check", "--read-data"]);
}
