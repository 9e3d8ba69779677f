//! Pack trailer plaintext and whole packs (with a fixed key) from untrusted bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use repo::crypto::MasterKey;

fuzz_target!(|data: &[u8]| {
    // Whatever decodes re-encodes to the same bytes: one encoding per trailer.
    if let Ok(entries) = repo::pack::reader::decode_trailer(data, data.len() as u64 * 2, "fuzz") {
        let again = repo::pack::writer::encode_trailer(&entries, data[4]);
        assert_eq!(again.ok().as_deref(), Some(data));
    }
    let _ = repo::pack::reader::parse_pack(&MasterKey::from_secret([1; 32]), data, "fuzz");
});
