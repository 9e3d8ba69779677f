//! `init` racing itself, and keys that open no config.

use std::sync::Arc;

use super::*;
use crate::backend::local::LocalBackend;
use crate::backend::memory::MemoryBackend;

fn cheap() -> KdfParams {
    KdfParams::with_costs(256, 1, 1)
}

/// Several inits at one location at once: exactly one creates the repository, the others
/// fail and leave nothing behind; the repository opens and has one key.
fn race(backend: Arc<dyn Backend>) {
    let results: Vec<Result<RepoConfig>> = std::thread::scope(|s| {
        let inits: Vec<_> = (0..6)
            .map(|_| {
                let b = backend.clone();
                s.spawn(move || {
                    Repository::init(b.as_ref(), b"pw", RepoConfig::new_default(), cheap())
                })
            })
            .collect();
        inits.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let won: Vec<&RepoConfig> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(backend.clone(), b"pw", cache.path()).unwrap();
    assert_eq!(repo.config().id, won[0].id);
    assert_eq!(backend.list("keys/").unwrap().len(), 1);
}

#[test]
fn of_inits_racing_at_one_place_exactly_one_creates_the_repository() {
    race(Arc::new(MemoryBackend::new()));
    let dir = tempfile::tempdir().unwrap();
    race(Arc::new(LocalBackend::new(dir.path().join("repo"))));
}

#[test]
fn a_key_that_opens_with_the_password_but_not_the_config_is_passed_over() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let cfg =
        Repository::init(backend.as_ref(), b"pw", RepoConfig::new_default(), cheap()).unwrap();
    // What an init that lost a race and was killed before removing its key leaves.
    let stray = KeyFile::wrap(&MasterKey::generate(), b"pw", cheap()).unwrap();
    for _ in 0..3 {
        let path = key_path(&KeyId::random());
        backend.put(&path, &stray.encode()).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(backend.clone(), b"pw", cache.path()).unwrap();
    assert_eq!(repo.config().id, cfg.id);
    // Only stray keys: the config's error, not "wrong password".
    let lone: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    lone.put(CONFIG_PATH, &backend.get(CONFIG_PATH).unwrap())
        .unwrap();
    lone.put(&key_path(&KeyId::random()), &stray.encode())
        .unwrap();
    let err = Repository::open(lone, b"pw", cache.path()).err().unwrap();
    assert!(!matches!(err, Error::WrongPassword), "{err}");
}

/// A shared lock taken through `repo`, at once.
fn shared(repo: &Repository, ctx: &crate::ops::context::Ctx) -> Result<crate::lock::Lock> {
    repo.lock(
        crate::lock::LockKind::Shared,
        "test",
        Default::default(),
        ctx,
    )
}

/// Empties the backend as `rm -rf` would.
fn remove_everything(backend: &dyn Backend) {
    for o in backend.list("").unwrap() {
        backend.delete(&o.path).unwrap();
    }
}

#[test]
fn a_handle_writes_nothing_once_its_repository_is_removed_or_replaced() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    Repository::init(backend.as_ref(), b"pw", RepoConfig::new_default(), cheap()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let old = Repository::open(backend.clone(), b"pw", cache.path()).unwrap();
    let ctx = crate::ops::context::Ctx::default();
    let held = shared(&old, &ctx).unwrap();
    old.check_locks().unwrap();
    let sink = crate::journal::Sink::of(&old);
    assert!(sink.same_repository().unwrap());

    // Removed while held (a long `follow`): nothing more is committed or locked.
    remove_everything(backend.as_ref());
    assert!(old.check_locks().is_err());
    drop(held);
    let e = old.check_same_repository().unwrap_err();
    assert!(e.to_string().contains("was removed since"), "{e}");
    assert!(!sink.same_repository().unwrap());

    // Created again at the same place, even with the same password: the old handle's
    // key is not this repository's, so it takes no lock and writes no record.
    Repository::init(backend.as_ref(), b"pw", RepoConfig::new_default(), cheap()).unwrap();
    let Err(e) = shared(&old, &ctx) else {
        panic!("a lock was taken in the new repository with the old key");
    };
    assert!(matches!(e, Error::Refused(_)), "{e}");
    assert!(e.to_string().contains("replaced by another one"), "{e}");
    assert!(old.check_locks().is_err());
    assert!(!sink.same_repository().unwrap());
    assert!(backend.list("locks/").unwrap().is_empty());
    let state = tempfile::tempdir().unwrap();
    let mut rec = crate::journal::Record::start("follow", &["repo".into()]);
    rec.finish("failed", serde_json::Value::Null, None);
    let written = crate::journal::record(state.path(), "here", Some(&sink), &rec).unwrap();
    assert!(!written);
    assert!(backend.list("log/").unwrap().is_empty());
    assert!(
        !state.path().join("journal").exists(),
        "nothing kept for later"
    );

    // A handle opened now works as ever.
    let new = Repository::open(backend.clone(), b"pw", cache.path()).unwrap();
    let _lock = shared(&new, &ctx).unwrap();
    new.check_locks().unwrap();
}

#[test]
fn opening_where_no_config_is_says_there_is_no_repository() {
    let cache = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let e = Repository::open(backend, b"pw", cache.path())
        .err()
        .unwrap();
    assert!(matches!(e, Error::NoRepository(_)), "{e}");
}
