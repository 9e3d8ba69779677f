//! How files are cut: format version 4 cuts files under 1 MiB into ~32 KiB chunks, so an
//! edit stores about one chunk; older versions keep one chunk per file under 512 KiB.
//! Restore and scan compare live files with stored ones whatever cut them — this
//! repository's chunkers, or another repository's (a copied snapshot).

use std::fs;
use std::path::Path;

use crate::common::{random_bytes, Env};

const MID: usize = 600 << 10;
const LIMIT: usize = 1 << 20;

fn insert_middle(p: &Path, what: &[u8]) {
    let mut d = fs::read(p).unwrap();
    let at = d.len() / 2;
    d.splice(at..at, what.iter().copied());
    fs::write(p, d).unwrap();
}

/// Sets every file's mtime under `dir` to 1970, so only content can tell them apart.
fn touch_all(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            touch_all(&p);
        } else {
            filetime::set_file_mtime(&p, filetime::FileTime::from_unix_time(1, 0)).unwrap();
        }
    }
}

/// Files on both sides of the small-file limit and far from it.
fn sources(src: &Path) {
    fs::create_dir_all(src).unwrap();
    fs::write(src.join("tiny.txt"), b"tiny\n").unwrap();
    fs::write(src.join("mid.bin"), random_bytes(MID, 1)).unwrap();
    fs::write(src.join("under.bin"), random_bytes(LIMIT - 1, 2)).unwrap();
    fs::write(src.join("at.bin"), random_bytes(LIMIT, 3)).unwrap();
    fs::write(src.join("big.bin"), random_bytes(3 * LIMIT, 4)).unwrap();
}

#[test]
fn each_format_version_cuts_files_its_own_way_and_comparisons_hold_across_copies() {
    let env = Env::new();
    for version in ["3", "4"] {
        let src = env.path(&format!("src-v{version}"));
        sources(&src);
        let r = env.path(&format!("repo-v{version}"));
        let rs = r.to_str().unwrap();
        let s = src.to_str().unwrap();
        env.ok(&["init", "-r", rs, "--format-version", version]);
        env.ok(&["snapshot", "-r", rs, s]);

        // An edit in the middle of a 600 KiB file: version 4 stores a chunk or two of it,
        // version 3 the whole file again (incompressible bytes: stored ≈ raw).
        insert_middle(&src.join("mid.bin"), b"an edit in the middle");
        let second = env.json(&["snapshot", "-r", rs, s]);
        let added = second["summary"]["bytes_added_raw"].as_u64().unwrap() as usize;
        if version == "4" {
            assert!(
                added < MID / 2,
                "version 4 added {added} bytes for one edit"
            );
        } else {
            // The whole chunk holding the edit: at least version 3's 512 KiB minimum
            // (the repository's random chunker seed may cut the 600 KiB file in two).
            assert!(
                added >= 512 << 10,
                "version 3 added {added} bytes for one edit"
            );
        }

        // Scan re-cuts every file: nothing may look corrupted, on either side of the limit.
        let scan = env.run(&["scan", "-r", rs, s, "--read", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
        assert_eq!(scan.status.code(), Some(0), "{report}");
        assert_eq!(report["corrupted"], serde_json::json!([]), "{report}");
        assert_eq!(report["files_read"], 5, "{report}");

        // Restore, then make every restored file look changed by its mtime alone: a
        // restore that compares content (if-changed) must find each one intact.
        let out = env.path(&format!("out-v{version}"));
        let o = out.to_str().unwrap();
        env.ok(&["restore", "-r", rs, "latest", "--target", o]);
        let inside = out.join(src.strip_prefix("/").unwrap());
        touch_all(&inside);
        let again = env.json(&[
            "restore",
            "-r",
            rs,
            "latest",
            "--target",
            o,
            "--conflict",
            "if-changed",
        ]);
        assert_eq!(again["files"], 0, "{again}");
        for n in ["tiny.txt", "mid.bin", "under.bin", "at.bin", "big.bin"] {
            assert_eq!(
                fs::read(inside.join(n)).unwrap(),
                fs::read(src.join(n)).unwrap()
            );
        }
        // A one-byte change of the same size and mtime is found by content.
        let under = inside.join("under.bin");
        let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&under).unwrap());
        let mut d = fs::read(&under).unwrap();
        d[LIMIT / 2] ^= 1;
        fs::write(&under, d).unwrap();
        filetime::set_file_mtime(&under, mtime).unwrap();
        let fixed = env.json(&[
            "restore",
            "-r",
            rs,
            "latest",
            "--target",
            o,
            "--verify-existing",
        ]);
        assert_eq!(fixed["overwritten"], 1, "{fixed}");
        assert_eq!(
            fs::read(&under).unwrap(),
            fs::read(src.join("under.bin")).unwrap()
        );
    }

    // Copied into a repository of its own chunker seed, the snapshot keeps the source's
    // boundaries: scan and restore must still find every file intact.
    let copy = env.path("copy");
    let c = copy.to_str().unwrap();
    env.ok(&["init", "-r", c]);
    let from = env.path("repo-v4");
    env.ok(&["copy", "--from", from.to_str().unwrap(), "--to", c]);
    let src = env.path("src-v4");
    let scan = env.run(&["scan", "-r", c, src.to_str().unwrap(), "--read", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    assert_eq!(scan.status.code(), Some(0), "{report}");
    assert_eq!(report["corrupted"], serde_json::json!([]), "{report}");
    let out = env.path("out-v4");
    let r = env.json(&[
        "restore",
        "-r",
        c,
        "latest",
        "--target",
        out.to_str().unwrap(),
        "--verify-existing",
    ]);
    assert_eq!(
        (r["files"].as_u64(), r["overwritten"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    // The same copy still tells a changed byte from an intact file.
    let mid = src.join("mid.bin");
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&mid).unwrap());
    let mut d = fs::read(&mid).unwrap();
    d[1000] ^= 1;
    fs::write(&mid, d).unwrap();
    filetime::set_file_mtime(&mid, mtime).unwrap();
    let scan = env.run(&["scan", "-r", c, src.to_str().unwrap(), "--read", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    assert_ne!(scan.status.code(), Some(0), "{report}");
    assert_eq!(report["corrupted"].as_array().unwrap().len(), 1, "{report}");
}
