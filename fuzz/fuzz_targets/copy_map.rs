//! The copy translation cache (records of source and destination chunk ids).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = repo::copy_map::parse(data);
});
