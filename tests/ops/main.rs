//! The verbs called as a library, the way the service and backup plans call them: no
//! binary spawned, requests in, reports out, observed and cancelled from another thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repo::backend::local::LocalBackend;
use repo::ops::context::{CancelToken, Ctx, Message, Observer, Phase};
use repo::ops::restore::{FilesTarget, RestoreInto, RestoreOutcome, RestoreRequest};
use repo::ops::select::SnapshotRef;
use repo::ops::{check, forget, init, prune, restore, snapshot};
use repo::progress::Progress;
use repo::repository::Repository;
use repo::retention::RetentionPolicy;
use repo::secret::Password;
use repo::ErrorKind;

mod digests;
mod stale;

const PASSWORD: &[u8] = b"library tests";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self::with_pack_size(init::InitRequest::default().pack_size_mib)
    }

    fn with_pack_size(pack_size_mib: u64) -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let backend = LocalBackend::new(f.repo_dir());
        let req = init::InitRequest {
            pack_size_mib,
            ..Default::default()
        };
        init::run(&backend, &Password::new(PASSWORD.to_vec()), &req).expect("init");
        f
    }

    fn repo_dir(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn open(&self) -> Repository {
        let backend = Arc::new(LocalBackend::new(self.repo_dir()));
        Repository::open(backend, PASSWORD, &self.path("cache")).expect("open")
    }
}

/// Writes `n` files of `size` pseudo-random bytes under `dir` (content differs per file).
fn write_files(dir: &Path, n: usize, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for i in 0..n {
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(size);
        let sub = dir.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}.bin")), &data).unwrap();
    }
}

/// Every regular file below `dir`, relative path → content.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn snapshot_of(paths: &[&Path]) -> snapshot::SnapshotRequest {
    snapshot::SnapshotRequest {
        paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        ..Default::default()
    }
}

fn restore_into(target: &Path, sel: SnapshotRef) -> RestoreRequest {
    RestoreRequest {
        snapshot: sel,
        ordinal: None,
        include: Vec::new(),
        dry_run: false,
        into: RestoreInto::Files(FilesTarget {
            target: target.to_path_buf(),
            ..Default::default()
        }),
    }
}

/// A full check with data read, which must find nothing.
fn check_clean(repo: &Repository, ctx: &Ctx) -> check::CheckReport {
    let c = check::run(
        repo,
        &check::CheckRequest {
            read_data: true,
            ..Default::default()
        },
        ctx,
    )
    .expect("check");
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    c
}

/// Where `src` lands under a restore target (snapshots keep absolute paths).
fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

#[test]
fn snapshot_restore_check_forget_prune_as_library_calls() {
    let f = Fixture::new();
    let src = f.path("src");
    write_files(&src, 40, 50_000, 1);
    let repo = f.open();
    let ctx = Ctx::default();
    let first = snapshot::run(&repo, &snapshot_of(&[&src]), &ctx).expect("snapshot 1");
    let old = contents(&src);
    std::fs::remove_file(src.join("d0/f0.bin")).unwrap();
    write_files(&src.join("new"), 5, 70_000, 2);
    let second = snapshot::run(&repo, &snapshot_of(&[&src]), &ctx).expect("snapshot 2");
    assert_eq!(second.parent, Some(first.id));
    assert!(second.summary.files_unchanged >= 39, "{:?}", second.summary);

    // The older snapshot by id, the newer as `latest`: both come back byte for byte.
    let out1 = f.path("out1");
    let r = restore::run(
        &repo,
        &restore_into(&out1, SnapshotRef::id(first.id.to_hex())),
        &ctx,
    )
    .expect("restore 1");
    assert!(r.failure().is_none());
    assert_eq!(contents(&restored(&out1, &src)), old);
    let out2 = f.path("out2");
    restore::run(&repo, &restore_into(&out2, SnapshotRef::latest()), &ctx).expect("restore 2");
    assert_eq!(contents(&restored(&out2, &src)), contents(&src));

    let c = check_clean(&repo, &ctx);
    assert_eq!(c.snapshots, 2);

    let req = forget::ForgetRequest {
        policy: RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        },
        prune: Some(prune::PruneRequest {
            grace: Duration::ZERO,
            max_unused: 0.0,
            dry_run: false,
        }),
        ..Default::default()
    };
    let fr = forget::run(&repo, &req, &ctx).expect("forget");
    assert_eq!(fr.removed, vec![first.id]);
    assert_eq!(fr.kept, Some(1));
    let pr = fr.prune.expect("prune report");
    assert!(
        pr.bytes_freed > 0,
        "the deleted file's data is freed: {pr:?}"
    );
    // The JSON a face prints is the report's serialization.
    let json = serde_json::to_value(&pr).unwrap();
    assert!(json["bytes_freed"].as_u64().unwrap() > 0);

    check_clean(&repo, &ctx);
    let out3 = f.path("out3");
    restore::run(&repo, &restore_into(&out3, SnapshotRef::latest()), &ctx).expect("restore 3");
    assert_eq!(contents(&restored(&out3, &src)), contents(&src));
    // A snapshot that is gone is an input error, not damage.
    let e = restore::run(
        &repo,
        &restore_into(&out3, SnapshotRef::id(first.id.to_hex())),
        &ctx,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

/// Cancels its token once the running phase has done `after_items` items or
/// `after_bytes` bytes, and records what it saw.
struct CancelAfter {
    token: CancelToken,
    after_items: u64,
    after_bytes: u64,
    phases: Mutex<Vec<Phase>>,
    watching: Mutex<Vec<std::thread::JoinHandle<()>>>,
    done: Arc<AtomicBool>,
}

impl CancelAfter {
    fn new(after_items: u64, after_bytes: u64) -> Arc<Self> {
        Arc::new(CancelAfter {
            token: CancelToken::new(),
            after_items,
            after_bytes,
            phases: Mutex::new(Vec::new()),
            watching: Mutex::new(Vec::new()),
            done: Arc::new(AtomicBool::new(false)),
        })
    }

    fn ctx(self: &Arc<Self>) -> Ctx {
        Ctx::new(self.clone(), self.token.clone())
    }

    fn stop(&self) {
        self.done.store(true, Ordering::SeqCst);
        for t in self.watching.lock().unwrap().drain(..) {
            t.join().unwrap();
        }
    }
}

impl Observer for CancelAfter {
    fn phase(&self, phase: Phase, progress: &Arc<Progress>) {
        self.phases.lock().unwrap().push(phase);
        let (p, token, done) = (progress.clone(), self.token.clone(), self.done.clone());
        let (items, bytes) = (self.after_items, self.after_bytes);
        // From another thread, as a service's cancel request would come.
        let t = std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let c = p.counts();
                if c.items >= items && c.bytes >= bytes {
                    token.cancel();
                    return;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        self.watching.lock().unwrap().push(t);
    }

    fn message(&self, _m: &Message) {}
}

#[test]
fn a_cancelled_snapshot_commits_nothing_and_releases_its_lock() {
    let f = Fixture::new();
    let src = f.path("src");
    write_files(&src, 6000, 3000, 3);
    let repo = f.open();
    let obs = CancelAfter::new(100, 0);
    let e = snapshot::run(&repo, &snapshot_of(&[&src]), &obs.ctx()).unwrap_err();
    obs.stop();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert_eq!(*obs.phases.lock().unwrap(), vec![Phase::BackingUp]);
    assert!(
        repo.snapshots().unwrap().is_empty(),
        "no snapshot is committed"
    );
    assert!(
        repo::ops::locks::list(&repo, &Ctx::default())
            .unwrap()
            .is_empty(),
        "the lock is released"
    );
    // The repository is whole and usable: an exclusive verb runs, then a full snapshot.
    let ctx = Ctx::default();
    prune::run(
        &repo,
        &prune::PruneRequest {
            grace: Duration::ZERO,
            ..Default::default()
        },
        &ctx,
    )
    .expect("prune after a cancelled snapshot");
    let c = check::run(
        &repo,
        &check::CheckRequest {
            read_data: true,
            ..Default::default()
        },
        &ctx,
    )
    .unwrap();
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    snapshot::run(&repo, &snapshot_of(&[&src]), &ctx).expect("snapshot after cancel");
}

#[test]
fn a_cancelled_restore_leaves_no_half_written_file() {
    // Small packs: 72 MiB of files over ~72 packs, so cancellation lands between packs
    // with most files still to write.
    let f = Fixture::with_pack_size(1);
    let src = f.path("src");
    write_files(&src, 24, 3 << 20, 4);
    let repo = f.open();
    let ctx = Ctx::default();
    snapshot::run(&repo, &snapshot_of(&[&src]), &ctx).expect("snapshot");
    let out = f.path("out");
    let obs = CancelAfter::new(0, 4 << 20);
    let e = restore::run(
        &repo,
        &restore_into(&out, SnapshotRef::latest()),
        &obs.ctx(),
    )
    .unwrap_err();
    obs.stop();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    // Whatever is there is complete and correct; nothing else (no temporaries) is.
    let want: std::collections::HashMap<PathBuf, Vec<u8>> = contents(&src).into_iter().collect();
    let got = if restored(&out, &src).exists() {
        contents(&restored(&out, &src))
    } else {
        Vec::new()
    };
    assert!(got.len() < want.len(), "the restore was stopped part way");
    for (path, data) in &got {
        assert_eq!(
            want.get(path),
            Some(data),
            "{} is partial or stray",
            path.display()
        );
    }
    assert!(repo::ops::locks::list(&repo, &Ctx::default())
        .unwrap()
        .is_empty());
    // Restoring again completes it.
    match restore::run(&repo, &restore_into(&out, SnapshotRef::latest()), &ctx) {
        Ok(RestoreOutcome::Files(r)) => assert!(r.errors.is_empty(), "{:?}", r.errors),
        other => panic!("{other:?}"),
    }
    assert_eq!(contents(&restored(&out, &src)), contents(&src));
}
