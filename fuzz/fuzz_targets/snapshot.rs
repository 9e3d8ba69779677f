//! Snapshot JSON and sealed snapshots.
#![no_main]
use libfuzzer_sys::fuzz_target;
use repo::crypto::MasterKey;
use repo::id::SnapshotId;

fuzz_target!(|data: &[u8]| {
    let _ = repo::snapshot::Snapshot::decode(data, "fuzz");
    let _ = repo::snapshot::Snapshot::open(&MasterKey::from_secret([1; 32]), data, &SnapshotId([0; 32]));
});
