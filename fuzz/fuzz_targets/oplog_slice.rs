//! Oplog slice records (JSON, sealed) and the raw-BSON entry stream they name.
#![no_main]
use libfuzzer_sys::fuzz_target;
use repo::crypto::MasterKey;
use repo::id::SliceId;

fuzz_target!(|data: &[u8]| {
    let _ = repo::mongo::oplog::slice::Slice::decode(data, "fuzz");
    let _ = repo::mongo::oplog::slice::Slice::open(&MasterKey::from_secret([1; 32]), data, &SliceId([0; 32]));
    let _ = repo::mongo::oplog::slice::split_entries(data);
});
