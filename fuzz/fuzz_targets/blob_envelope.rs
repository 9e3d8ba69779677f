//! Blob envelopes and compressed payloads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use repo::crypto::MasterKey;

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::from_secret([1; 32]);
    let _ = repo::blob::open(&key, data, 1 << 16, "fuzz");
    if let Some((flag, payload)) = data.split_first() {
        let _ = repo::compress::decompress(*flag, payload, 1 << 16, "fuzz");
    }
});
