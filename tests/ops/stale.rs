//! Processes that keep a repository open (the service, a mount) while other hosts prune
//! it: what a prune deleted must never be taken as stored by the next backup, and a prune
//! through such a handle must see what other hosts added since it opened its index.

use super::*;

#[test]
fn backups_and_prunes_through_long_lived_handles_see_each_others_changes() {
    let f = Fixture::new();
    let src = f.path("src");
    write_files(&src, 6, 40_000, 11);
    let ctx = Ctx::default();
    // Two long-lived handles with their own caches, as two hosts' services: their local
    // indexes stay open across jobs. Neither is refreshed by hand: taking a lock does it.
    let open = |cache: &str| {
        let backend = Arc::new(LocalBackend::new(f.repo_dir()));
        Repository::open(backend, PASSWORD, &f.path(cache)).expect("open")
    };
    let service = open("cache");
    let other = open("other-cache");
    let prune = |id: String| {
        let req = forget::ForgetRequest {
            ids: vec![id],
            prune: Some(prune::PruneRequest {
                grace: Duration::ZERO,
                max_unused: 0.0,
                dry_run: false,
            }),
            ..Default::default()
        };
        forget::run(&other, &req, &ctx).expect("forget and prune");
    };
    let restores = |n: u32| {
        let out = f.path(&format!("out{n}"));
        let r = restore::run(&service, &restore_into(&out, SnapshotRef::latest()), &ctx)
            .expect("restore");
        assert!(r.failure().is_none(), "restore {n}: {:?}", r.failure());
        assert_eq!(contents(&restored(&out, &src)), contents(&src));
    };

    let first = snapshot::run(&service, &snapshot_of(&[&src]), &ctx).expect("snapshot 1");
    // The other host removes that snapshot and prunes everything it held.
    other.snapshots().expect("list");
    prune(first.id.to_hex());
    // The service's next backup stores it all again.
    let second = snapshot::run(&service, &snapshot_of(&[&src]), &ctx).expect("snapshot 2");
    assert!(second.parent.is_none());
    restores(2);

    // Pruned again through the same handle, whose index predates the second snapshot.
    prune(second.id.to_hex());
    snapshot::run(&service, &snapshot_of(&[&src]), &ctx).expect("snapshot 3");
    restores(3);
    // The service replaced its index twice; the one it replaced last time (its own,
    // private since the first time) is removed once nothing uses it.
    service.refresh_index().expect("refresh");
    assert_eq!(private_indexes(&f.path("cache")), 1);

    check_clean(&other, &ctx);
}

/// How many private index directories are under `cache`.
fn private_indexes(cache: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![cache.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with("index-private-")
                {
                    n += 1;
                } else {
                    stack.push(e.path());
                }
            }
        }
    }
    n
}
