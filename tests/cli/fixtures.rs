//! Committed damaged repositories (tests/fixtures/damaged/<kind>/), one per kind of check
//! finding, as restic keeps them: `check` must name the damage and its fix, `restore` must
//! bring back everything that is not lost, and `repair` must leave a repository that
//! checks clean. Regenerate with
//! `REPO_WRITE_FIXTURES=1 cargo test --test cli fixtures::generate -- --ignored`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{random_bytes, Env};

/// The fixtures and the finding kinds `check --read-data` must report for each.
const FIXTURES: [(&str, &[&str]); 9] = [
    ("pack_missing", &["pack_missing", "snapshot_damaged"]),
    ("pack_size", &["pack_size", "snapshot_damaged"]),
    ("pack_trailer", &["pack_trailer"]),
    ("blob_damaged", &["blob_damaged", "snapshot_damaged"]),
    ("segment_unreadable", &["segment_unreadable"]),
    ("pending_unreadable", &["pending_unreadable"]),
    ("pack_unindexed", &["pack_unindexed"]),
    ("snapshot_unreadable", &["snapshot_unreadable"]),
    ("slice_damaged", &["slice_damaged"]),
];

/// Fixtures whose damage loses `big.bin` (its only pack is gone or damaged).
const LOSES_BIG: [&str; 3] = ["pack_missing", "pack_size", "blob_damaged"];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/damaged")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// The files of the fixtures' snapshots, by name.
fn expected_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("keep.txt", b"kept".to_vec()),
        ("big.bin", random_bytes(40_000, 1)),
        ("sub/x.txt", b"x".to_vec()),
    ]
}

/// `check --read-data`: whether it passed, the finding kinds, and the fix commands.
fn kinds(env: &Env) -> (bool, Vec<String>, Vec<String>) {
    let out = env.run(&["check", "--read-data", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let findings = v["findings"].as_array().unwrap();
    let mut k: Vec<String> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    let mut fixes: Vec<String> = findings
        .iter()
        .map(|f| f["fix"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k.dedup();
    fixes.sort();
    fixes.dedup();
    (out.status.success(), k, fixes)
}

/// Restores the latest snapshot; returns the names of the expected files that came back
/// intact (a file that comes back must be byte-identical).
fn restored(env: &Env, tag: &str) -> Vec<&'static str> {
    let target = env.path(tag);
    let _ = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let mut found = Vec::new();
    for (name, bytes) in expected_files() {
        let hits: Vec<PathBuf> = walk(&target)
            .into_iter()
            .filter(|p| p.ends_with(name))
            .collect();
        if let Some(p) = hits.first() {
            assert_eq!(fs::read(p).unwrap(), bytes, "{tag}: {name} restored wrong");
            found.push(name);
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn every_damaged_fixture_is_found_restored_as_far_as_possible_and_repaired() {
    for (name, want) in FIXTURES {
        let env = Env::new();
        copy_dir(&fixtures_dir().join(name).join("repo"), &env.repo());
        let (ok, got, fixes) = kinds(&env);
        assert_eq!(got, want, "{name}: check findings");
        assert_eq!(ok, name == "pack_unindexed", "{name}: check exit status");
        let all = ["keep.txt", "big.bin", "sub/x.txt"];
        let before = restored(&env, &format!("before-{name}"));
        if LOSES_BIG.contains(&name) {
            assert_eq!(before, ["keep.txt", "sub/x.txt"], "{name}");
        } else {
            assert_eq!(before, all, "{name}");
        }
        // Exactly the commands check says repair the damage.
        for fix in &fixes {
            let args: Vec<&str> = fix.split_whitespace().collect();
            assert_eq!(args[0], "repo", "{name}: {fix}");
            env.ok(&args[1..]);
        }
        let (ok, got, _) = kinds(&env);
        assert!(ok && got.is_empty(), "{name} after {fixes:?}: {got:?}");
        let after = restored(&env, &format!("after-{name}"));
        assert_eq!(after, before, "{name}: repair must not lose more");
        // The repaired repository prunes normally.
        env.ok(&["prune", "--grace", "0"]);
        let (ok, got, _) = kinds(&env);
        assert!(ok && got.is_empty(), "{name} after prune: {got:?}");
    }
}

/// Writes the fixtures (run by hand, then commit tests/fixtures/damaged).
#[test]
#[ignore]
fn generate() {
    if std::env::var_os("REPO_WRITE_FIXTURES").is_none() {
        eprintln!("set REPO_WRITE_FIXTURES=1 to rewrite tests/fixtures/damaged");
        return;
    }
    for (name, _) in FIXTURES {
        let env = Env::new();
        env.ok(&["init", "--pack-size-mib", "1"]);
        let src = env.path("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        // The small files first, in a run of their own, so that big.bin's pack holds
        // nothing else: damage to it loses big.bin only.
        let mut ids = Vec::new();
        for (n, b) in expected_files() {
            if n != "big.bin" {
                fs::write(src.join(n), b).unwrap();
            }
        }
        ids.push(env.json(&["snapshot", "--threads", "1", src.to_str().unwrap()])["id"].clone());
        fs::write(src.join("big.bin"), random_bytes(40_000, 1)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        ids.push(env.json(&["snapshot", "--threads", "1", src.to_str().unwrap()])["id"].clone());
        damage(&env, name, &src);
        let _ = fs::remove_file(env.repo().join("reserve"));
        let _ = fs::remove_dir_all(env.repo().join("locks"));
        let out = fixtures_dir().join(name);
        let _ = fs::remove_dir_all(&out);
        copy_dir(&env.repo(), &out.join("repo"));
        if name == "snapshot_unreadable" {
            // The oldest snapshot is damaged (so `latest` is still the full one); its name
            // is kept for the test.
            let first = ids[0].as_str().unwrap();
            fs::create_dir_all(out.join("damaged")).unwrap();
            fs::write(out.join("damaged").join(first), b"").unwrap();
            fs::write(out.join("repo/snapshots").join(first), b"not a snapshot").unwrap();
        }
    }
}

/// The largest pack (the one holding big.bin).
fn big_pack(repo: &Path) -> PathBuf {
    walk(&repo.join("packs"))
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
}

fn damage(env: &Env, name: &str, src: &Path) {
    let repo = env.repo();
    let flip = |p: &Path, at: usize| {
        let mut b = fs::read(p).unwrap();
        let at = if at >= b.len() {
            b.len() - (at - b.len())
        } else {
            at
        };
        b[at] ^= 0x20;
        fs::write(p, b).unwrap();
    };
    match name {
        "pack_missing" => fs::remove_file(big_pack(&repo)).unwrap(),
        "pack_size" => {
            let p = big_pack(&repo);
            let len = fs::metadata(&p).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        }
        "pack_trailer" => {
            let p = big_pack(&repo);
            let len = fs::metadata(&p).unwrap().len() as usize;
            flip(&p, len - 12);
        }
        "blob_damaged" => flip(&big_pack(&repo), 100),
        "segment_unreadable" => {
            let seg = walk(&repo.join("index")).remove(0);
            flip(&seg, 40);
        }
        "pending_unreadable" => {
            fs::create_dir_all(repo.join("pending")).unwrap();
            fs::write(repo.join("pending").join("ab".repeat(32)), b"garbage").unwrap();
        }
        "pack_unindexed" => {
            // A second run whose segment and snapshot were lost: its pack is listed nowhere.
            fs::write(src.join("late.bin"), random_bytes(30_000, 5)).unwrap();
            let before: Vec<PathBuf> = walk(&repo.join("index"));
            let snap = env.json(&["snapshot", "--threads", "1", src.to_str().unwrap()]);
            for seg in walk(&repo.join("index")) {
                if !before.contains(&seg) {
                    fs::remove_file(seg).unwrap();
                }
            }
            fs::remove_file(repo.join("snapshots").join(snap["id"].as_str().unwrap())).unwrap();
        }
        // Damaged by the generator once copied.
        "snapshot_unreadable" => {}
        "slice_damaged" => {
            fs::create_dir_all(repo.join("oplog")).unwrap();
            fs::write(repo.join("oplog").join("cd".repeat(32)), b"not a slice").unwrap();
        }
        other => panic!("no damage for {other}"),
    }
}
