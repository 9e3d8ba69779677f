//! Pack trailer plaintext and whole packs (with a fixed key) from untrusted bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use repo::crypto::MasterKey;

fuzz_target!(|data: &[u8]| {
    let _ = repo::pack::reader::decode_trailer(data, data.len() as u64 * 2, "fuzz");
    let _ = repo::pack::reader::parse_pack(&MasterKey::from_secret([1; 32]), data, "fuzz");
});
