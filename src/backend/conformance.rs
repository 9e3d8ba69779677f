//! The behaviour every [`Backend`] must show, as one check run against each of them: the
//! unit tests run it on the local and in-memory backends, `tests/cli/object_store.rs` on
//! real S3, Azure Blob and GCS servers. Panics on the first deviation (test support).

use super::Backend;
use crate::error::Error;

/// Runs every check against an empty backend; leaves it empty again.
pub fn check(b: &dyn Backend) {
    check_objects(b);
    check_put_new(b, true);
}

/// [`check`] for a server that cannot create exclusively: fake-gcs-server ignores
/// `ifGenerationMatch=0` on the resumable upload OpenDAL's conditional write starts (real
/// GCS honours it); `put_new` must still create a missing object and never report an
/// existing one as created.
pub fn check_without_exclusive_create(b: &dyn Backend) {
    check_objects(b);
    check_put_new(b, false);
}

fn check_objects(b: &dyn Backend) {
    assert!(matches!(b.get("config"), Err(Error::Missing(_))));
    assert!(!b.exists("config").unwrap());
    b.put("packs/ab/abcd", b"0123456789").unwrap();
    b.put("config", b"c").unwrap();
    assert!(b.exists("config").unwrap());
    assert_eq!(b.get("packs/ab/abcd").unwrap(), b"0123456789");
    assert_eq!(b.get_range("packs/ab/abcd", 3, 4).unwrap(), b"3456");
    assert!(b.get_range("packs/ab/abcd", 8, 4).is_err());
    assert!(matches!(
        b.get_range("packs/ab/nope", 0, 1),
        Err(Error::Missing(_))
    ));
    let l = b.list("packs/").unwrap();
    let names: Vec<(&str, u64)> = l.iter().map(|o| (o.path.as_str(), o.size)).collect();
    assert_eq!(names, vec![("packs/ab/abcd", 10)]);
    // Listings say when an object was written, where the service knows (prune relies on
    // it to spare young objects that may belong to a write in progress).
    if let Some(m) = l[0].modified {
        let age = std::time::SystemTime::now()
            .duration_since(m)
            .unwrap_or_default();
        assert!(age < std::time::Duration::from_secs(600), "{l:?}");
        assert!(!l[0].older_than(std::time::Duration::from_secs(600)));
    }
    assert!(b.list("snapshots/").unwrap().is_empty());
    // Replacing an object with the same bytes is harmless (idempotent uploads, retries).
    b.put("config", b"c").unwrap();
    assert_eq!(b.get("config").unwrap(), b"c");
    b.delete("packs/ab/abcd").unwrap();
    b.delete("packs/ab/abcd").unwrap();
    assert!(b.list("packs/").unwrap().is_empty());
    assert!(!b.exists("packs/ab/abcd").unwrap());
    assert!(b.put("../escape", b"x").is_err());
    b.delete("config").unwrap();
}

/// Exclusive creation (`init`'s config): a second writer is refused and the first one's
/// bytes stay; of writers racing for one path, exactly one creates it.
fn check_put_new(b: &dyn Backend, exclusive: bool) {
    assert!(b.put_new("keys/new", b"first").unwrap());
    assert_eq!(b.get("keys/new").unwrap(), b"first");
    if !exclusive {
        b.delete("keys/new").unwrap();
        return;
    }
    assert!(!b.put_new("keys/new", b"second").unwrap());
    assert_eq!(b.get("keys/new").unwrap(), b"first");
    b.delete("keys/new").unwrap();
    let won: Vec<bool> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..4u8)
            .map(|i| s.spawn(move || b.put_new("keys/race", &[i; 64]).unwrap()))
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = won.iter().position(|w| *w).unwrap() as u8;
    assert_eq!(b.get("keys/race").unwrap(), [winner; 64]);
    b.delete("keys/race").unwrap();
    assert!(b.put_new("../escape", b"x").is_err());
}

/// Large objects (multipart uploads on object stores) and long listings (pagination).
pub fn check_scale(b: &dyn Backend, big: usize, many: usize) {
    let data: Vec<u8> = (0..big).map(|i| (i * 31 % 251) as u8).collect();
    b.put("packs/bi/big", &data).unwrap();
    assert_eq!(b.get("packs/bi/big").unwrap(), data);
    let mid = big / 2;
    assert_eq!(
        b.get_range("packs/bi/big", mid as u64, 1000).unwrap(),
        &data[mid..mid + 1000]
    );
    for i in 0..many {
        b.put(&format!("index/{i:05}"), &[i as u8]).unwrap();
    }
    let l = b.list("index/").unwrap();
    assert_eq!(l.len(), many);
    assert!(l.windows(2).all(|w| w[0].path < w[1].path));
    assert_eq!(b.list("packs/").unwrap()[0].size, big as u64);
    for i in 0..many {
        b.delete(&format!("index/{i:05}")).unwrap();
    }
    b.delete("packs/bi/big").unwrap();
    assert!(b.list("").unwrap().is_empty());
}
