//! Damage the repository must survive: lost packs, damaged trailers and trees,
//! unreadable snapshot objects, segments and caches, bad key files, leftovers of killed
//! writers — each found, named with the command that repairs it, and repaired.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{assert_same_tree, random_bytes, write_big_file, Env};

fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("packs")).unwrap() {
        for f in fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if !p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

struct Setup {
    env: Env,
    src: PathBuf,
    /// Data packs holding only `victim.bin` (written by the first snapshot).
    victim_packs: Vec<PathBuf>,
}

/// Two snapshots; `victim.bin` is in both, `other.bin` only in the second.
fn setup() -> Setup {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    write_big_file(&src.join("victim.bin"), 3 << 20, 1);
    env.ok(&["init", "--pack-size-mib", "1"]);
    env.snapshot(&[&src]);
    let victim_packs = packs(&env.repo())
        .into_iter()
        .filter(|p| fs::metadata(p).unwrap().len() > 500_000)
        .collect();
    fs::write(src.join("other.bin"), random_bytes(100_000, 2)).unwrap();
    fs::write(src.join("sub/small.txt"), b"small").unwrap();
    env.snapshot(&[&src]);
    Setup {
        env,
        src,
        victim_packs,
    }
}

fn findings(env: &Env, read_data: bool) -> Vec<serde_json::Value> {
    let mut args = vec!["check", "--json"];
    if read_data {
        args.push("--read-data");
    }
    let out = env.run(&args);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    v["findings"].as_array().unwrap().clone()
}

fn kinds(f: &[serde_json::Value]) -> Vec<String> {
    let mut k: Vec<String> = f
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k.dedup();
    k
}

fn check_clean(env: &Env) {
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
}

#[test]
fn a_lost_pack_is_repaired_and_the_next_snapshot_stores_the_data_again() {
    let s = setup();
    let env = &s.env;
    fs::remove_file(&s.victim_packs[0]).unwrap();
    let f = findings(env, false);
    assert_eq!(kinds(&f), vec!["pack_missing", "snapshot_damaged"], "{f:?}");
    assert!(f.iter().all(|f| f["fix"] == "repo repair"), "{f:?}");
    // A dry run changes nothing.
    let dry = env.json(&["repair", "--dry-run"]);
    assert_eq!(dry["snapshots"].as_array().unwrap().len(), 2, "{dry}");
    assert!(findings(env, false).len() >= 2);
    let r = env.json(&["repair"]);
    assert_eq!(r["packs_missing"].as_array().unwrap().len(), 1, "{r}");
    let snaps = r["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{r}");
    for s in snaps {
        let lost: Vec<&str> = s["lost"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(lost.len(), 1, "{r}");
        assert!(lost[0].ends_with("/victim.bin"), "{r}");
        assert!(s["replaced_by"].is_string());
    }
    check_clean(env);
    // The repaired snapshots say so, and restore what survived.
    let list = env.json(&["snapshots"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["repaired"]["lost_paths"] == 1));
    let t = env.path("t1");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let base = t.join(s.src.strip_prefix("/").unwrap());
    assert!(!base.join("victim.bin").exists());
    assert_eq!(
        fs::read(base.join("other.bin")).unwrap(),
        random_bytes(100_000, 2)
    );
    // The next snapshot reads victim.bin again and stores the lost chunks again (at least
    // about what the lost pack held: victim packs are over 500 kB; which of them sorts first,
    // a full one or the last partial one, depends on the repository's key).
    let snap = env.snapshot(&[&s.src]);
    assert!(
        snap["summary"]["bytes_added_raw"].as_u64().unwrap() >= 450_000,
        "{snap}"
    );
    check_clean(env);
    let t = env.path("t2");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_same_tree(&s.src, &t.join(s.src.strip_prefix("/").unwrap()));
}

#[test]
fn a_damaged_trailer_alone_loses_nothing_and_is_reported_as_such() {
    let s = setup();
    let env = &s.env;
    let pack = &s.victim_packs[0];
    let mut b = fs::read(pack).unwrap();
    let n = b.len();
    b[n - 10] ^= 0x55; // inside the encrypted trailer
    fs::write(pack, b).unwrap();
    for read_data in [false, true] {
        let f = findings(env, read_data);
        assert_eq!(kinds(&f), vec!["pack_trailer"], "{f:?}");
        assert!(
            f[0]["paths"].is_null() && f[0]["fix"] == "repo repair index",
            "{f:?}"
        );
    }
    // Every snapshot still restores completely.
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_same_tree(&s.src, &t.join(s.src.strip_prefix("/").unwrap()));
    let r = env.json(&["repair", "index"]);
    assert_eq!(r["blobs_lost"], 0, "{r}");
    assert!(r["blobs_salvaged"].as_u64().unwrap() >= 1, "{r}");
    check_clean(env);
    env.ok(&["prune", "--grace", "0"]);
    check_clean(env);
    let t = env.path("t2");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_same_tree(&s.src, &t.join(s.src.strip_prefix("/").unwrap()));
}

#[test]
fn a_damaged_tree_costs_only_its_directory() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::create_dir_all(src.join("b")).unwrap();
    // Data large enough that the small pack is the one holding the trees.
    fs::write(src.join("a/one"), random_bytes(50_000, 1)).unwrap();
    fs::write(src.join("b/two"), random_bytes(50_000, 3)).unwrap();
    // One thread: trees reach their pack in the order directories are finished.
    env.json(&["snapshot", "--threads", "1", src.to_str().unwrap()]);
    // Tree blobs are in their own pack; damage the one holding directory `a`.
    let ls = env.json(&["ls", "latest"]);
    assert!(ls.as_array().unwrap().len() >= 4);
    let tree_pack = packs(&env.repo())
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() < 8_000)
        .expect("a small pack of trees");
    // Its first blob is the first directory finished: `a`.
    let mut b = fs::read(&tree_pack).unwrap();
    b[30] ^= 0x01;
    fs::write(&tree_pack, b).unwrap();
    let t = env.path("t");
    let out = env.run(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("cannot be read"), "{err}");
    // Everything else was restored.
    let base = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read(base.join("b/two")).unwrap(),
        random_bytes(50_000, 3)
    );
    assert!(!base.join("a/one").exists());
}

#[test]
fn one_unreadable_snapshot_object_stops_nothing_and_forget_removes_it() {
    let s = setup();
    let env = &s.env;
    let snaps = env.json(&["snapshots"]);
    let first = snaps[0]["id"].as_str().unwrap().to_string();
    fs::write(env.repo().join("snapshots").join(&first), b"garbage").unwrap();
    let out = env.cmd(&["snapshots", "--json"]).output().unwrap();
    assert!(out.status.success());
    let left: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(left.as_array().unwrap().len(), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&first[..8]) && err.contains("damaged"),
        "{err}"
    );
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    env.snapshot(&[&s.src]);
    let f = findings(env, false);
    assert_eq!(kinds(&f), vec!["snapshot_unreadable"], "{f:?}");
    assert_eq!(f[0]["fix"], format!("repo forget {}", &first[..8]));
    env.ok(&["forget", "--keep-last", "5"]);
    env.ok(&["prune", "--grace", "0"]);
    env.ok(&["forget", &first[..8]]);
    check_clean(env);
}

#[test]
fn damaged_segments_and_caches_heal_and_repair_index_rewrites_them() {
    let s = setup();
    let env = &s.env;
    // A damaged local cache (RocksDB files overwritten) is rebuilt with a warning.
    let cache = env.path("home/cache/repo");
    for e in fs::read_dir(&cache).unwrap() {
        let idx = e.unwrap().path().join("index");
        for f in fs::read_dir(&idx).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "sst")
                || f.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("MANIFEST")
            {
                fs::write(&f, b"garbage").unwrap();
            }
        }
    }
    let t = env.path("t1");
    let out = env.run(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("rebuilding"));
    assert_same_tree(&s.src, &t.join(s.src.strip_prefix("/").unwrap()));
    // A damaged segment: its packs are found by their trailers; nothing is written.
    let seg = fs::read_dir(env.repo().join("index"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut b = fs::read(&seg).unwrap();
    b[20] ^= 1;
    fs::write(&seg, b).unwrap();
    fs::remove_dir_all(&cache).unwrap();
    let before = crate::common::objects(&env.repo());
    let t = env.path("t2");
    let out = env.run(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("repo repair index"));
    assert_same_tree(&s.src, &t.join(s.src.strip_prefix("/").unwrap()));
    // Restore repairs nothing in the repository; it only adds its operation-log record.
    let mut after = crate::common::objects(&env.repo());
    let added: Vec<String> = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .cloned()
        .collect();
    assert!(
        added.len() == 1 && added[0].starts_with("log/"),
        "{added:?}"
    );
    after.remove(&added[0]);
    assert_eq!(after, before);
    let f = findings(env, false);
    assert!(
        kinds(&f).contains(&"segment_unreadable".to_string()),
        "{f:?}"
    );
    // Prune refuses a repository with a damaged segment; repair fixes it.
    assert!(!env.run(&["prune"]).status.success());
    let r = env.json(&["repair", "index"]);
    assert!(r["packs_adopted"].as_u64().unwrap() >= 1, "{r}");
    check_clean(env);
    env.ok(&["prune"]);
}

#[test]
fn bad_key_files_neither_lock_out_nor_slow_down_the_others() {
    let env = Env::new();
    env.init();
    let keys = env.repo().join("keys");
    let good = fs::read_dir(&keys).unwrap().next().unwrap().unwrap().path();
    let mut kf: serde_json::Value = serde_json::from_slice(&fs::read(&good).unwrap()).unwrap();
    // A key demanding 4 GiB of memory, and one that is not a key file at all.
    kf["kdf"]["memory_kib"] = serde_json::json!(4u64 << 20);
    fs::write(keys.join("00".repeat(32)), serde_json::to_vec(&kf).unwrap()).unwrap();
    fs::write(keys.join("01".repeat(32)), b"{ not json").unwrap();
    let started = std::time::Instant::now();
    env.ok(&["snapshots"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let list = env.json(&["key", "list"]);
    let damaged = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["damaged"].is_string())
        .count();
    assert_eq!(damaged, 2, "{list}");
    // With only bad keys left, the error says the keys are damaged, not the password wrong.
    fs::remove_file(&good).unwrap();
    let out = env.run(&["snapshots"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("corrupt") && !err.contains("wrong password"),
        "{err}"
    );
}

#[test]
fn prune_removes_old_leftovers_of_killed_writers_and_spares_fresh_ones() {
    let s = setup();
    let env = &s.env;
    let dir = s.victim_packs[0].parent().unwrap().to_path_buf();
    let old = dir.join(".tmp-0123456789abcdef");
    let fresh = dir.join(".tmp-fedcba9876543210");
    fs::write(&old, vec![0u8; 10_000]).unwrap();
    fs::write(&fresh, vec![0u8; 10_000]).unwrap();
    let two_hours_ago =
        filetime::FileTime::from_unix_time(chrono::Utc::now().timestamp() - 7200, 0);
    filetime::set_file_mtime(&old, two_hours_ago).unwrap();
    // Even with no grace period: a fresh one may be a lock being taken beside this prune.
    let r = env.json(&["prune", "--grace", "0s"]);
    assert_eq!(r["leftovers_removed"], 1, "{r}");
    assert!(!old.exists() && fresh.exists());
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: PathBuf, mib: u32) -> Option<SmallDisk> {
        fs::create_dir_all(&path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(SmallDisk { path });
        }
        assert!(
            !crate::common::services_required(),
            "cannot mount a tmpfs (the full-disk test needs root)"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        None
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

/// Fills the file system holding `dir` to the last byte.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0xA5u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    let mut small = [0u8; 512];
    small.fill(1);
    while f.write_all(&small[..1]).is_ok() {}
}

#[test]
fn prune_frees_space_on_a_full_disk() {
    let env = Env::new();
    let Some(disk) = SmallDisk::mount(env.path("disk"), 40) else {
        return;
    };
    let repo = disk.path.join("repo");
    let run = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env("REPO_REPOSITORY", &repo);
        c.output().unwrap()
    };
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    ok(&["init", "--pack-size-mib", "1"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    // write_big_file repeats blocks pairwise (seeds differ only in the lowest bit): 8 MiB
    // hold 4 MiB of distinct data; seeds far apart share nothing.
    write_big_file(&src.join("old.bin"), 8 << 20, 1001);
    let first: serde_json::Value =
        serde_json::from_str(&ok(&["snapshot", "--json", src.to_str().unwrap()])).unwrap();
    fs::remove_file(src.join("old.bin")).unwrap();
    write_big_file(&src.join("new.bin"), 6 << 20, 5001);
    ok(&["snapshot", src.to_str().unwrap()]);
    fill(&disk.path);
    // A backup of more data fails cleanly on the full disk.
    write_big_file(&src.join("more.bin"), 4 << 20, 9001);
    assert!(!run(&["snapshot", src.to_str().unwrap()]).status.success());
    fs::remove_file(src.join("more.bin")).unwrap();
    ok(&["forget", first["id"].as_str().unwrap()]);
    // With the default grace period prune explains what to do rather than failing
    // obscurely; with none it frees the space.
    let o = run(&["prune"]);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--grace 0"), "{err}");
    }
    let r: serde_json::Value =
        serde_json::from_str(&ok(&["prune", "--grace", "0", "--json"])).unwrap();
    assert!(r["bytes_removed"].as_u64().unwrap() >= 3 << 20, "{r}");
    // The repository is whole, and takes new backups again.
    let out = ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    write_big_file(&src.join("more.bin"), 2 << 20, 13001);
    ok(&["snapshot", src.to_str().unwrap()]);
    let t = env.path("t");
    ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_same_tree(&src, &t.join(src.strip_prefix("/").unwrap()));
}
