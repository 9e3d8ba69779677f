//! Tree decoding; anything that decodes must re-encode to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = repo::tree::decode(data, "fuzz") {
        assert_eq!(repo::tree::encode(&t), data, "decoded trees are canonical");
    }
});
