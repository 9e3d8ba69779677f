//! forget, prune (including crashes at every dangerous step), index rebuild and keys.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{assert_same_tree, random_bytes, Env};

/// Total bytes of the repository's files.
fn repo_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        n += if md.is_dir() {
            repo_bytes(&e.path())
        } else {
            md.len()
        };
    }
    n
}

struct History {
    env: Env,
    src: PathBuf,
    ids: Vec<String>,
}

/// Three snapshots A, B, C of one directory whose files come and go, in 1 MiB packs, so
/// that forgetting A and B leaves packs that are entirely dead and packs that are partly
/// live.
fn history() -> History {
    let env = Env::new();
    env.ok(&["init", "--pack-size-mib", "1"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let put =
        |name: &str, seed: u64| fs::write(src.join(name), random_bytes(600_000, seed)).unwrap();
    for (i, name) in ["a1", "a2", "a3", "a4"].iter().enumerate() {
        // random_bytes ignores the seed's lowest bit: keep the seeds odd and distinct.
        put(name, 2 * i as u64 + 1);
    }
    put("shared", 99);
    // One thread: blobs reach packs in walk order, so the pack layout (a1+a2 | a3+a4 |
    // shared) is the same on every run.
    let snap = |env: &Env| {
        env.json(&["snapshot", "--threads", "1", src.to_str().unwrap()])["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut ids = Vec::new();
    ids.push(snap(&env));
    fs::remove_file(src.join("a1")).unwrap();
    fs::remove_file(src.join("a2")).unwrap();
    put("b1", 21);
    ids.push(snap(&env));
    fs::remove_file(src.join("a3")).unwrap();
    put("c1", 23);
    ids.push(snap(&env));
    History { env, src, ids }
}

fn restore_latest_matches(h: &History, name: &str) {
    let out = h.env.path(name);
    h.env
        .ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert_same_tree(&h.src, &out.join(h.src.strip_prefix("/").unwrap()));
}

#[test]
fn forget_then_prune_reclaims_space_and_keeps_what_is_needed() {
    let h = history();
    let env = &h.env;

    // A dry run removes nothing.
    let plan = env.json(&["forget", "--keep-last", "1", "--dry-run"]);
    let decisions = plan["groups"][0]["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 3);
    assert_eq!(decisions[0]["keep"], true);
    assert_eq!(decisions[0]["reasons"][0], "last");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 3);

    // By id, then by policy.
    env.ok(&["forget", &h.ids[0][..12]]);
    env.ok(&["forget", "--keep-last", "1"]);
    let left = env.json(&["snapshots"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["id"], h.ids[2].as_str());

    let before = repo_bytes(&env.repo());
    let dry = env.json(&["prune", "--dry-run", "--grace", "0"]);
    assert_eq!(
        repo_bytes(&env.repo()),
        before,
        "dry run changed the repository"
    );
    // By default the first run only marks what is unneeded: a writer on another host that
    // read the index before may still use those packs.
    let r = env.json(&["prune"]);
    assert!(r["packs_deleted"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["packs_rewritten"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["packs_removed"], 0, "{r}");
    let marked = r["packs_pending"].as_u64().unwrap();
    assert_eq!(
        marked,
        r["packs_deleted"].as_u64().unwrap() + r["packs_rewritten"].as_u64().unwrap(),
        "{r}"
    );
    assert!(fs::read_dir(env.repo().join("pending")).unwrap().count() == 1);
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    restore_latest_matches(&h, "out-marked");
    // A run within the grace period deletes nothing either.
    let again = env.json(&["prune"]);
    assert_eq!(
        (
            again["packs_removed"].as_u64(),
            again["packs_pending"].as_u64()
        ),
        (Some(0), Some(marked)),
        "{again}"
    );
    // Past it (here: no grace at all), the marked packs go.
    let r = env.json(&["prune", "--grace", "0"]);
    assert_eq!(r["packs_removed"].as_u64(), Some(marked), "{r}");
    assert_eq!(r["packs_pending"], 0, "{r}");
    assert!(
        !env.repo().join("pending").exists()
            || fs::read_dir(env.repo().join("pending")).unwrap().count() == 0
    );
    let after = repo_bytes(&env.repo());
    // a1, a2, a3 (3 x 600 kB of random data) are gone; the dry run's estimate only lacks
    // the new packs' trailers and the index segments.
    let (est, got) = (dry["bytes_freed"].as_u64().unwrap(), before - after);
    assert!(got > 1_700_000, "freed only {got} bytes");
    assert!(
        est.abs_diff(got) < est / 100,
        "estimated {est}, freed {got}"
    );
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    restore_latest_matches(&h, "out");

    // A second prune has nothing left to do.
    let again = env.json(&["prune", "--grace", "0"]);
    for key in [
        "packs_deleted",
        "packs_rewritten",
        "packs_removed",
        "blobs_removed",
    ] {
        assert_eq!(again[key], 0, "{key}: {again}");
    }
}

#[test]
fn stored_policy_is_used_and_empty_policies_are_refused() {
    let h = history();
    let env = &h.env;
    let o = env.run(&["forget"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no retention policy"));
    env.ok(&["forget", "--keep-last", "2", "--save-policy", "--dry-run"]);
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 3);
    let r = env.json(&["forget", "--prune"]);
    assert_eq!(r["policy"]["keep_last"], 2);
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);
    env.ok(&["check", "--read-data"]);
    restore_latest_matches(&h, "out");
}

#[test]
fn prune_killed_at_any_step_leaves_kept_snapshots_restorable() {
    for point in [
        "prune-after-repack",
        "prune-after-segments",
        "prune-mid-segment-delete",
        "prune-mid-pack-delete",
    ] {
        let h = history();
        let env = &h.env;
        env.ok(&["forget", "--keep-last", "1"]);
        // No grace period: every step, pack deletion included, happens in this run.
        let o = env
            .cmd(&["prune", "--grace", "0"])
            .env("REPO_FAILPOINT", point)
            .output()
            .unwrap();
        crate::common::assert_aborted_at(&o, point);
        // The dead prune's lock is stale (its process is gone): nothing else is needed.
        let out = env.ok(&["check", "--read-data"]);
        assert!(out.contains("no errors found"), "{point}: {out}");
        restore_latest_matches(&h, &format!("out-{point}"));
        // A rerun finishes the job.
        env.ok(&["prune", "--grace", "0"]);
        let out = env.ok(&["check", "--read-data"]);
        assert!(
            out.contains("no errors found") && !out.contains("warning"),
            "{point} after rerun: {out}"
        );
        let again = env.json(&["prune", "--grace", "0"]);
        assert_eq!(again["packs_deleted"], 0, "{point}: {again}");
        assert_eq!(again["packs_unindexed"], 0, "{point}: {again}");
        assert_eq!(again["packs_removed"], 0, "{point}: {again}");
        restore_latest_matches(&h, &format!("out2-{point}"));
    }
}

#[test]
fn index_rebuilds_from_segments_and_from_packs() {
    let h = history();
    let env = &h.env;
    let cache = env.path("home/cache/repo");
    // 1. Lose the local index: it comes back from the segments.
    for e in fs::read_dir(&cache).unwrap() {
        fs::remove_dir_all(e.unwrap().path().join("index")).unwrap();
    }
    let r = env.json(&["index", "rebuild"]);
    assert!(r["segments_merged"].as_u64().unwrap() >= 3, "{r}");
    restore_latest_matches(&h, "out1");
    // 2. Lose the segments too: they come back from the pack trailers.
    fs::remove_dir_all(env.repo().join("index")).unwrap();
    fs::create_dir_all(env.repo().join("index")).unwrap();
    let r = env.json(&["index", "rebuild", "--from-packs"]);
    assert!(r["packs_from_trailers"].as_u64().unwrap() >= 3, "{r}");
    assert_eq!(fs::read_dir(env.repo().join("index")).unwrap().count(), 1);
    restore_latest_matches(&h, "out2");
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    // And a fresh client (no cache at all) finds everything through the new segment.
    fs::remove_dir_all(&cache).unwrap();
    restore_latest_matches(&h, "out3");
}

#[test]
fn keys_add_list_remove_and_passwd() {
    let env = Env::new();
    env.init();
    let src = env.path("k");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "x").unwrap();
    env.snapshot(&[&src]);
    let with_pw =
        |pw: &str, args: &[&str]| env.cmd(args).env("REPO_PASSWORD", pw).output().unwrap();

    let o = env
        .cmd(&["key", "add"])
        .env("REPO_NEW_PASSWORD", "second")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let keys = env.json(&["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(with_pw("second", &["snapshots"]).status.success());

    // The key in use cannot be removed; the other one can, and its password stops working.
    let current = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap();
    let other = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == false)
        .unwrap();
    let o = env.run(&["key", "remove", current["id"].as_str().unwrap()]);
    assert!(!o.status.success());
    env.ok(&["key", "remove", &other["id"].as_str().unwrap()[..10]]);
    let o = with_pw("second", &["snapshots"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong password"));

    // The last key can never go, even from another key's point of view.
    let o = env.run(&["key", "remove", current["id"].as_str().unwrap()]);
    assert!(!o.status.success());

    // passwd: the new password works, the old one does not, the data is intact.
    let o = env
        .cmd(&["key", "passwd"])
        .env("REPO_NEW_PASSWORD", "third")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!env.run(&["snapshots"]).status.success());
    let o = with_pw("third", &["check", "--read-data"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let keys = with_pw("third", &["key", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
}

#[test]
fn stats_report_dedup_unique_bytes_and_reclaimable_space() {
    let h = history();
    let env = &h.env;
    let st = env.json(&["stats"]);
    assert_eq!(st["snapshots"], 3);
    // 7 distinct 600 kB files of random data (no compression); the snapshots hold
    // 5 + 4 + 4 files of them.
    let raw = st["data_raw_bytes"].as_u64().unwrap();
    assert!((4_200_000..4_300_000).contains(&raw), "{st}");
    assert!(
        (st["dedup_ratio"].as_f64().unwrap() - 13.0 / 7.0).abs() < 0.02,
        "{st}"
    );
    assert_eq!(st["reclaimable_bytes"], 0);
    let per = st["per_snapshot"].as_array().unwrap();
    // A holds a1, a2 alone; B nothing alone; C holds c1 alone.
    let unique: Vec<u64> = per
        .iter()
        .map(|s| s["unique_raw_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(unique, vec![1_200_000, 0, 600_000], "{st}");

    env.ok(&["forget", &h.ids[0]]);
    let st = env.json(&["stats", &h.ids[2][..8]]);
    assert_eq!(st["per_snapshot"].as_array().unwrap().len(), 1);
    let reclaim = st["reclaimable_bytes"].as_u64().unwrap();
    assert!((1_200_000..1_300_000).contains(&reclaim), "{st}");
    let r = env.json(&["prune", "--max-unused", "0%", "--grace", "0"]);
    assert_eq!(
        r["bytes_freed"].as_u64().unwrap() / 10_000,
        reclaim / 10_000,
        "{r}"
    );
}

#[test]
fn quota_stops_a_snapshot_that_would_exceed_it() {
    let h = history();
    let env = &h.env;
    let used = env.json(&["stats"])["size_on_disk"].as_u64().unwrap();
    let quota = (used + 1_000_000).to_string();
    env.ok(&["settings", "--quota", &quota]);
    assert_eq!(
        env.json(&["settings"])["quota_bytes"].as_u64(),
        Some(used + 1_000_000)
    );
    fs::write(h.src.join("big"), random_bytes(3_000_000, 777)).unwrap();
    let o = env.run(&["snapshot", h.src.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("quota"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 3);
    let out = env.ok(&["check"]);
    assert!(out.contains("no errors found"), "{out}");
    // At or over the quota, nothing is even attempted.
    env.ok(&["settings", "--quota", "1000"]);
    let o = env.run(&["snapshot", h.src.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("at or over its quota"));
    env.ok(&["settings", "--quota", "none"]);
    env.snapshot(&[&h.src]);
}
