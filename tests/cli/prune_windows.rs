//! Prune against readers and writers started inside each of its windows: readers never
//! write to the repository, and every snapshot that a writer reported saved restores —
//! also when the writer's lock was invisible to prune (a host whose listing lagged).

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{assert_same_tree, objects, random_bytes, Env, Paused};

/// The windows of one prune run, in order.
const WINDOWS: [&str; 4] = [
    "prune-after-repack",
    "prune-after-segments",
    "prune-mid-segment-delete",
    "prune-mid-pack-delete",
];

struct Setup {
    env: Env,
    src: PathBuf,
    /// Content that only the forgotten snapshot had (so prune marks its packs).
    forgotten: Vec<u8>,
}

/// Two snapshots in 1 MiB packs; the first, which alone holds `old.bin`, is forgotten.
fn setup() -> Setup {
    let env = Env::new();
    env.ok(&["init", "--pack-size-mib", "1"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let forgotten = random_bytes(900_000, 7);
    fs::write(src.join("old.bin"), &forgotten).unwrap();
    fs::write(src.join("kept.bin"), random_bytes(900_000, 9)).unwrap();
    let first = env.json(&["snapshot", "--threads", "1", src.to_str().unwrap()]);
    fs::remove_file(src.join("old.bin")).unwrap();
    fs::write(src.join("new.bin"), random_bytes(700_000, 11)).unwrap();
    env.json(&["snapshot", "--threads", "1", src.to_str().unwrap()]);
    env.ok(&["forget", first["id"].as_str().unwrap()]);
    Setup {
        env,
        src,
        forgotten,
    }
}

/// Runs the read-only commands as another host (own cache) and as this one; they may
/// fail while packs vanish, but must never change the repository.
fn readers_write_nothing(env: &Env, point: &str) {
    let before = objects(&env.repo());
    let other_cache = env.path(&format!("cache-{point}"));
    for args in [
        &["snapshots"][..],
        &["ls", "latest"],
        &["find", "*.bin"],
        &["stats"],
        &["index", "rebuild"],
    ] {
        let mut c = env.cmd(args);
        c.env("XDG_CACHE_HOME", &other_cache);
        let _ = c.output().unwrap();
        let _ = env.run(args);
    }
    assert_eq!(
        objects(&env.repo()),
        before,
        "{point}: a reader wrote to the repository"
    );
}

/// Restores every snapshot and checks the data.
fn everything_restores(s: &Setup, tag: &str) {
    let env = &s.env;
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{tag}: {out}");
    for snap in env.json(&["snapshots"]).as_array().unwrap() {
        let id = snap["id"].as_str().unwrap();
        let target = env.path(&format!("r-{tag}-{}", &id[..8]));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
    }
}

/// Starts `c` (run with `-v`) and returns once it is waiting for the repository lock.
pub(crate) fn writer_waiting_for(c: std::process::Command) -> Paused {
    Paused::watch(c, "waiting up to")
}

fn lock_files(repo: &Path) -> Vec<PathBuf> {
    fs::read_dir(repo.join("locks"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn readers_inside_every_prune_window_write_nothing_and_writers_wait() {
    for point in WINDOWS {
        let s = setup();
        let env = &s.env;
        // Zero grace: every window, pack deletion included, happens in this run. Prune
        // stays in the window until the readers and the writer below are in it too.
        let prune = Paused::start(env.cmd(&["prune", "--grace", "0"]), point);
        readers_write_nothing(env, point);
        // A writer started now waits for prune's lock, then backs up the forgotten
        // content again: it must not deduplicate against packs prune is removing.
        fs::write(s.src.join("again.bin"), &s.forgotten).unwrap();
        let writer = writer_waiting_for(env.cmd(&[
            "-v",
            "snapshot",
            "--lock-wait",
            "2m",
            s.src.to_str().unwrap(),
        ]));
        let p = prune.finish();
        let writer = writer.finish();
        assert!(
            p.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&p.stderr)
        );
        assert!(
            writer.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&writer.stderr)
        );
        everything_restores(&s, point);
        let target = env.path(&format!("latest-{point}"));
        env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
        assert_same_tree(&s.src, &target.join(s.src.strip_prefix("/").unwrap()));
    }
}

#[test]
fn a_writer_whose_lock_prune_could_not_see_keeps_its_snapshot() {
    let s = setup();
    let env = &s.env;
    // The writer backs up the forgotten content again, deduplicating against the packs
    // prune is about to mark, and stops just before committing.
    fs::write(s.src.join("again.bin"), &s.forgotten).unwrap();
    let before_locks = lock_files(&env.repo());
    assert!(before_locks.is_empty());
    let writer = Paused::start(
        env.cmd(&["snapshot", "--json", s.src.to_str().unwrap()]),
        "snapshot-before-commit",
    );
    // Its lock is invisible to prune (a lagging listing): hide it while prune runs.
    let locks = lock_files(&env.repo());
    assert_eq!(locks.len(), 1, "{locks:?}");
    let hidden = env.path("hidden-lock");
    fs::rename(&locks[0], &hidden).unwrap();
    let marked = env.json(&["prune", "--grace", "2s"]);
    assert!(marked["packs_pending"].as_u64().unwrap() >= 1, "{marked}");
    assert_eq!(marked["packs_removed"], 0, "{marked}");
    fs::rename(&hidden, &locks[0]).unwrap();
    // The writer commits: its snapshot references blobs in packs now marked.
    let w = writer.finish();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let id = serde_json::from_slice::<serde_json::Value>(&w.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // It restores at once, through the packs no segment lists any more.
    let early = env.path("restored-early");
    env.ok(&["restore", &id, "--target", early.to_str().unwrap()]);
    assert_same_tree(&s.src, &early.join(s.src.strip_prefix("/").unwrap()));
    // Past the grace period, prune finds those blobs live and lists the packs again
    // instead of deleting them.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let second = env.json(&["prune", "--grace", "2s"]);
    assert!(second["packs_adopted"].as_u64().unwrap() >= 1, "{second}");
    everything_restores(&s, "adopted");
    let target = env.path("restored");
    env.ok(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_same_tree(&s.src, &target.join(s.src.strip_prefix("/").unwrap()));
}

#[test]
fn a_writer_that_lost_its_lock_commits_nothing() {
    let s = setup();
    let env = &s.env;
    fs::write(s.src.join("again.bin"), &s.forgotten).unwrap();
    let writer = Paused::start(
        env.cmd(&["snapshot", s.src.to_str().unwrap()]),
        "snapshot-before-commit",
    );
    // Someone took it for stale and removed it (`repo unlock --all` on another host).
    for l in lock_files(&env.repo()) {
        fs::remove_file(l).unwrap();
    }
    let w = writer.finish();
    assert!(!w.status.success());
    let err = String::from_utf8_lossy(&w.stderr);
    assert!(err.contains("lock"), "{err}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);
    everything_restores(&s, "lost-lock");
}
