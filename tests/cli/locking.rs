//! Repository locks: concurrent snapshots share the repository, prune needs it alone, and
//! locks of dead processes do not block anyone.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{assert_same_tree, random_bytes, Env, Paused};

/// Lock objects in a local repository; a lock still being written (a `.tmp-` file, not
/// yet renamed into place) is not one yet.
fn lock_count(repo: &Path) -> usize {
    fs::read_dir(repo.join("locks")).map_or(0, |d| {
        d.flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

/// Starts a snapshot that pauses (holding its lock) just before it commits, until
/// released.
fn paused_snapshot(env: &Env, src: &Path) -> Paused {
    Paused::start(
        env.cmd(&["snapshot", src.to_str().unwrap()]),
        "snapshot-before-commit",
    )
}

fn wait_for_locks(env: &Env, n: usize) {
    let start = Instant::now();
    while lock_count(&env.repo()) < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lock appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tree(env: &Env, name: &str, seed: u64) -> std::path::PathBuf {
    let d = env.path(name);
    fs::create_dir_all(&d).unwrap();
    for i in 0..5 {
        fs::write(d.join(format!("f{i}")), random_bytes(200_000, seed + i)).unwrap();
    }
    d
}

#[test]
fn concurrent_snapshots_both_succeed_and_restore() {
    let env = Env::new();
    env.init();
    let a = tree(&env, "a", 1);
    let b = tree(&env, "b", 100);
    let ca = paused_snapshot(&env, &a);
    let cb = paused_snapshot(&env, &b);
    // Both hold their shared lock at the same time.
    wait_for_locks(&env, 2);
    for c in [ca, cb] {
        let o = c.finish();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(lock_count(&env.repo()), 0, "locks were not released");
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    for (src, name) in [(&a, "ra"), (&b, "rb")] {
        let t = env.path(name);
        env.ok(&[
            "restore",
            "--at",
            "now",
            "--target",
            t.to_str().unwrap(),
            src.to_str().unwrap(),
        ]);
        assert_same_tree(src, &t.join(src.strip_prefix("/").unwrap()));
    }
}

#[test]
fn prune_during_a_snapshot_fails_clearly_or_waits() {
    let env = Env::new();
    env.init();
    let a = tree(&env, "a", 1);
    env.snapshot(&[&a]);
    let c = paused_snapshot(&env, &a);
    wait_for_locks(&env, 1);
    let o = env.run(&["prune"]);
    assert_eq!(o.status.code(), Some(11), "prune ran during a snapshot");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("locked") && err.contains("\"snapshot\""),
        "{err}"
    );
    // With --lock-wait it waits for the snapshot and then runs.
    let prune =
        crate::prune_windows::writer_waiting_for(env.cmd(&["-v", "prune", "--lock-wait", "2m"]));
    let s = c.finish();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let o = prune.finish();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
}

#[test]
fn locks_of_killed_processes_are_stale_and_removable() {
    let env = Env::new();
    env.init();
    let a = tree(&env, "a", 1);
    let c = paused_snapshot(&env, &a);
    wait_for_locks(&env, 1);
    c.kill();
    assert_eq!(lock_count(&env.repo()), 1);
    let locks = env.json(&["locks"]);
    assert_eq!(locks[0]["stale"], true, "{locks}");
    assert_eq!(locks[0]["command"], "snapshot");
    // A stale lock does not block an exclusive one.
    env.ok(&["prune"]);
    env.ok(&["unlock"]);
    assert_eq!(lock_count(&env.repo()), 0);
}

#[test]
fn interrupting_a_snapshot_commits_nothing_and_leaves_no_lock() {
    let env = Env::new();
    env.init();
    let a = tree(&env, "a", 7);
    // Paused after storing everything, just before it would commit.
    let c = paused_snapshot(&env, &a);
    wait_for_locks(&env, 1);
    c.interrupt();
    // The signal handler only sets a flag; give it a moment before the snapshot goes on
    // to the commit that must notice it.
    std::thread::sleep(Duration::from_millis(500));
    let o = c.finish();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(lock_count(&env.repo()), 0, "Ctrl-C left a stale lock");
    assert!(env.json(&["snapshots"]).as_array().unwrap().is_empty());
    // What it stored is unreferenced, not damage; prune (exclusive) runs at once.
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    env.ok(&["prune", "--grace", "0"]);
    env.snapshot(&[&a]);
}

#[test]
fn ctrl_c_stops_a_wait_for_the_lock() {
    let env = Env::new();
    env.init();
    let a = tree(&env, "a", 3);
    let snap = paused_snapshot(&env, &a);
    let prune =
        crate::prune_windows::writer_waiting_for(env.cmd(&["-v", "prune", "--lock-wait", "2m"]));
    prune.interrupt();
    // Not released before prune ended: a prune that sat out its wait would fail with
    // "locked" after two minutes instead.
    let o = prune.finish();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("cancelled while waiting for the repository lock"),
        "{err}"
    );
    let s = snap.finish();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    assert_eq!(lock_count(&env.repo()), 0);
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);
}

/// `check` runs beside backups (a shared lock each): what they write while it runs is
/// neither damage nor leftovers, and a snapshot whose segment it did not read is the
/// next check's, not a "cannot be restored".
#[test]
fn a_check_beside_backups_reports_only_what_is_wrong() {
    let env = Env::new();
    env.init();
    let a = tree(&env, "a", 1);
    env.snapshot(&[&a]);
    // The check has read the segments and waits while a whole backup runs.
    let check = Paused::start(env.cmd(&["check", "--json"]), "check-after-segments");
    let b = tree(&env, "b", 200);
    env.snapshot(&[&b]);
    let out = check.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["findings"], serde_json::json!([]), "{r}");
    assert_eq!(r["snapshots"], 1, "{r}");
    assert!(r["packs_in_flight"].as_u64().unwrap() >= 1, "{r}");
    // The next check sees both, and nothing wrong.
    let r = env.json(&["check"]);
    assert_eq!(r["findings"], serde_json::json!([]), "{r}");
    assert_eq!(
        (r["snapshots"].as_u64(), r["packs_in_flight"].as_u64()),
        (Some(2), Some(0))
    );
}

/// Hosts sharing one location may run `init` at the same moment: exactly one creates the
/// repository; each other one fails saying a repository exists, and leaves no key behind
/// that could hide the real one. (Before, every one said "created" and the repository
/// opened with none of them.)
#[test]
fn inits_racing_at_one_location_create_exactly_one_repository() {
    let env = Env::new();
    let inits: Vec<_> = (0..6)
        .map(|_| {
            env.cmd(&["init"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = inits
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let created = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(created, 1, "{outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("a repository already exists"), "{err}");
    }
    assert_eq!(fs::read_dir(env.repo().join("keys")).unwrap().count(), 1);
    let src = tree(&env, "src", 7);
    env.snapshot(&[&src]);
    env.ok(&["check"]);
}

/// A repository deleted and created again at its location while `follow` runs on it (an
/// operator starting over, a script reusing a path): the old `follow` holds the old
/// repository's key, so whatever it wrote would be unreadable noise in the new one (index
/// segments and operation-log records that fail `check`). It stops with a clear error
/// instead, before writing anything there.
#[test]
fn follow_stops_when_its_repository_is_replaced_and_leaves_the_new_one_clean() {
    use mongodb::bson::{doc, Document};
    let Some((uri, client)) = crate::common::mongo_server() else {
        return;
    };
    let name = crate::common::unique_db("replaced");
    let coll = client.database(&name).collection::<Document>("c");
    coll.insert_one(doc! {"_id": 1}).run().unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri, &format!("--db={name}")]);
    let mut f = crate::mongodb_pitr::follow(&env, &uri, &name);
    let sealed = || fs::read_dir(env.repo().join("oplog")).is_ok_and(|d| d.count() > 0);
    let start = Instant::now();
    while !sealed() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "follow sealed nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    fs::remove_dir_all(env.repo()).unwrap();
    env.init();
    coll.insert_one(doc! {"_id": 2}).run().unwrap();
    let start = Instant::now();
    while f.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            f.kill().unwrap();
            panic!("follow went on writing into the new repository");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = f.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("since this process opened it"), "{err}");
    // Nothing of the old key's reached the new repository: no slice, and `check` reads
    // every segment and log record.
    assert!(!sealed());
    let check = env.run(&["check", "--read-data"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
    client.database(&name).drop().run().unwrap();
}
