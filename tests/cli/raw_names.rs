//! Names that are not UTF-8, through every verb that names or lists snapshot paths.
//! Linux names are bytes; `x\xff` and `x\xfe` are two files. Text made of them lossily
//! (U+FFFD) made them one: `scan --read` reported one as corrupted (exit 4 on an intact
//! tree), `ls`/`find`/`diff` showed two identical paths, and no verb could be asked for
//! such a file at all (clap refused the argument).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::common::Env;

/// A tree with names that differ only in bytes that are not UTF-8.
fn odd_tree(env: &Env) -> (PathBuf, impl Fn(&[u8]) -> PathBuf) {
    let src = env.path("src");
    let d = src.join("d");
    std::fs::create_dir_all(&d).unwrap();
    let raw = {
        let d = d.clone();
        move |b: &[u8]| d.join(OsStr::from_bytes(b))
    };
    std::fs::write(raw(b"x\xff"), "ff\n").unwrap();
    std::fs::write(raw(b"x\xfe"), "fe, longer\n").unwrap();
    std::fs::write(raw(b"ok"), "ok\n").unwrap();
    std::fs::create_dir(raw(b"dir\xe9")).unwrap();
    std::fs::write(raw(b"dir\xe9/in"), "in\n").unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"x\xff"), raw(b"l\x80")).unwrap();
    (src, raw)
}

/// `path_hex` decoded, or the path's own bytes when it has none.
fn exact(e: &serde_json::Value) -> Vec<u8> {
    match e["path_hex"].as_str() {
        Some(h) => hex::decode(h).unwrap(),
        None => e["path"].as_str().unwrap().as_bytes().to_vec(),
    }
}

fn bytes_of(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// Runs `repo ARGS LAST` (`LAST` any bytes), asserts success, returns stdout.
fn ok_with(env: &Env, args: &[&str], last: &Path) -> Vec<u8> {
    let out = env.cmd(args).arg(last).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} {last:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn listings_keep_names_that_are_not_utf8_apart_and_exact() {
    let env = Env::new();
    env.init();
    let (src, raw) = odd_tree(&env);
    env.snapshot(&[&src]);

    // ls: text shows the odd bytes escaped (two lines, not one twice); JSON has them exact.
    let text = env.ok(&["ls", "latest", src.join("d").to_str().unwrap()]);
    let d = src.join("d");
    let d = d.to_str().unwrap();
    for want in ["x\\xff", "x\\xfe", "dir\\xe9/in", "l\\x80"] {
        assert!(text.contains(&format!("{d}/{want}\n")), "{want} in {text}");
    }
    let listed = env.json(&["ls", "latest", src.to_str().unwrap()]);
    let got: Vec<Vec<u8>> = listed.as_array().unwrap().iter().map(exact).collect();
    for p in [
        raw(b"x\xff"),
        raw(b"x\xfe"),
        raw(b"dir\xe9/in"),
        raw(b"l\x80"),
    ] {
        assert!(got.contains(&bytes_of(&p)), "{p:?} exactly in ls --json");
    }
    let link = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| exact(e) == bytes_of(&raw(b"l\x80")))
        .unwrap();
    assert_eq!(link["target_hex"], "78ff");

    // ls and dump of one such path, given as bytes.
    let out = ok_with(&env, &["ls", "--json", "latest"], &raw(b"x\xfe"));
    let one: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(exact(&one[0]), bytes_of(&raw(b"x\xfe")));
    assert_eq!(ok_with(&env, &["dump", "latest"], &raw(b"x\xff")), b"ff\n");
    let out = env
        .cmd(&["dump", "latest"])
        .arg(raw(b"x\xfd"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("x\\xfd: no such path"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // find: `?` is one byte, so `x?` finds both, each exactly once.
    let found = env.json(&["find", "x?"]);
    let mut got: Vec<Vec<u8>> = found.as_array().unwrap().iter().map(exact).collect();
    got.sort();
    assert_eq!(got, [bytes_of(&raw(b"x\xfe")), bytes_of(&raw(b"x\xff"))]);

    // diff: the one edited file, exactly.
    std::fs::write(raw(b"x\xff"), "ff, edited\n").unwrap();
    env.snapshot(&[&src]);
    let snaps = env.json(&["snapshots"]);
    let id = |i: usize| snaps[i]["id"].as_str().unwrap().to_string();
    let diff = env.json(&["diff", &id(0), &id(1)]);
    let changes = diff["changes"].as_array().unwrap();
    let changed: Vec<Vec<u8>> = changes.iter().map(exact).collect();
    assert!(changed.contains(&bytes_of(&raw(b"x\xff"))), "{diff}");
    assert!(!changed.contains(&bytes_of(&raw(b"x\xfe"))), "{diff}");
}

#[test]
fn restore_and_scan_name_files_that_are_not_utf8() {
    let env = Env::new();
    env.init();
    let (src, raw) = odd_tree(&env);
    env.snapshot(&[&src]);

    // One file by its exact path, positional and --include: only that one comes back.
    for how in ["positional", "include"] {
        let target = env.path(&format!("t-{how}"));
        let mut c = env.cmd(&["restore", "latest", "--target", target.to_str().unwrap()]);
        if how == "include" {
            c.arg("--include");
        }
        let out = c.arg(raw(b"x\xfe")).output().unwrap();
        assert!(
            out.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let at = |b: &[u8]| target.join(raw(b).strip_prefix("/").unwrap());
        assert_eq!(std::fs::read(at(b"x\xfe")).unwrap(), b"fe, longer\n");
        assert!(!at(b"x\xff").exists(), "{how}: only the one named");
    }

    // --exclude 'x?' leaves out both odd files and nothing else.
    let target = env.path("t-exclude");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--exclude",
        "x?",
    ]);
    let at = |b: &[u8]| target.join(raw(b).strip_prefix("/").unwrap());
    assert!(!at(b"x\xff").exists() && !at(b"x\xfe").exists());
    assert!(at(b"ok").exists() && at(b"dir\xe9/in").exists());

    // A glob must be text: a clear error, exit 1.
    let out = env
        .cmd(&[
            "restore",
            "latest",
            "--target",
            env.path("t-bad").to_str().unwrap(),
            "--include",
        ])
        .arg(OsStr::from_bytes(b"/src/x\xfe*"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a pattern must be UTF-8"));

    // scan --read of the intact tree: nothing lost (it used to open a lossy path and call
    // the file corrupted). Then one odd file edited in place, size and mtime kept: that
    // one, exactly, is corrupted.
    let p = src.to_str().unwrap();
    let out = env.run(&["scan", p, "--read", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let f = raw(b"x\xfe");
    let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&f).unwrap());
    std::fs::write(&f, "FE, LONGER\n").unwrap();
    filetime::set_file_mtime(&f, mtime).unwrap();
    let out = env.run(&["scan", p, "--read", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = src.join("d");
    assert_eq!(
        r["corrupted"],
        serde_json::json!([format!("{}/x\\xfe", d.display())])
    );
    assert!(r["missing"].as_array().unwrap().is_empty() && r["new"].as_array().unwrap().is_empty());
}

/// Two sources whose paths differ only in a byte that is not UTF-8 are two sources: each
/// its own parent chain, its own `--path`, its own `forget` group. Recorded as lossy text
/// they were one, and `forget --keep-last 1` removed every snapshot of one of them.
#[test]
fn sources_whose_paths_are_not_utf8_stay_apart() {
    let env = Env::new();
    env.init();
    let root = |b: &[u8]| env.path("data").join(OsStr::from_bytes(b));
    for b in [&b"caf\xe9"[..], &b"caf\xe8"[..]] {
        std::fs::create_dir_all(root(b)).unwrap();
        std::fs::write(root(b).join("f"), b).unwrap();
    }
    let snap = |b: &[u8]| {
        let out = ok_with(&env, &["snapshot", "--json"], &root(b));
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    let e1 = snap(b"caf\xe9");
    let e2 = snap(b"caf\xe8");
    let e3 = snap(b"caf\xe9");
    assert_ne!(e1["paths"], e2["paths"]);
    assert!(
        e1["paths"][0].as_str().unwrap().ends_with("caf\\xe9"),
        "{e1}"
    );
    assert_eq!(
        e3["parent"], e1["id"],
        "the parent is the same source's snapshot"
    );
    assert!(e2["parent"].is_null(), "{e2}");

    // --path takes the bytes and picks that source's snapshots only.
    let out = ok_with(&env, &["snapshots", "--json", "--path"], &root(b"caf\xe8"));
    let only: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["id"], e2["id"]);

    // Keeping the last one per source keeps one of each.
    env.ok(&["forget", "--keep-last", "1"]);
    let left = env.json(&["snapshots"]);
    let mut ids: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![e2["id"].as_str().unwrap(), e3["id"].as_str().unwrap()];
    want.sort();
    assert_eq!(ids, want);
}

/// A glob's `?` and classes count characters in UTF-8 names (`caf?` finds `café`, whose
/// `é` is two bytes), and still one byte in a name that is not UTF-8 — in `find`,
/// `restore --include` and `restore --exclude` alike.
#[test]
fn globs_count_characters_in_utf8_names_and_bytes_in_others() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("Документы")).unwrap();
    for name in ["café", "cafe", "été", "ete", "Документы/отчёт.txt"] {
        std::fs::write(src.join(name), name).unwrap();
    }
    std::fs::write(src.join(OsStr::from_bytes(b"caf\xff")), "ff").unwrap();
    env.snapshot(&[&src]);

    let found = |pattern: &str| {
        let out = ok_with(&env, &["--json", "find"], Path::new(pattern));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let mut names: Vec<Vec<u8>> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let p = exact(e);
                p[p.iter().rposition(|b| *b == b'/').unwrap() + 1..].to_vec()
            })
            .collect();
        names.sort();
        names
    };
    let want = |names: &[&[u8]]| {
        let mut v: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
        v.sort();
        v
    };
    assert_eq!(
        found("caf?"),
        want(&["café".as_bytes(), b"cafe", b"caf\xff"])
    );
    assert_eq!(found("[éè]t?"), want(&["été".as_bytes()]));
    assert_eq!(found("?????.txt"), want(&["отчёт.txt".as_bytes()]));
    assert_eq!(found("Д?к*"), want(&["Документы".as_bytes()]));

    // Restore: an include and an exclude written with `?` for the non-ASCII letters.
    let target = env.path("target");
    let glob = format!("{}/?????????/*", src.display());
    ok_with(
        &env,
        &[
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--include",
            &glob,
            "--include",
            &format!("{}/?t?", src.display()),
            "--exclude",
        ],
        Path::new("?t[é]"),
    );
    let back = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(back.join("Документы/отчёт.txt")).unwrap(),
        "Документы/отчёт.txt".as_bytes()
    );
    assert_eq!(std::fs::read(back.join("ete")).unwrap(), b"ete");
    assert!(!back.join("été").exists(), "excluded by ?t[é]");
    assert!(!back.join("café").exists(), "not included");
}
