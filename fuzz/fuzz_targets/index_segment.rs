//! Index segment plaintext.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packs) = repo::index::segment::decode(data, "fuzz") {
        assert_eq!(repo::index::segment::encode(data[4], &packs).unwrap(), data);
    }
});
