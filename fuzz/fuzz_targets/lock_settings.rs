//! Lock objects and the settings object (both sealed JSON).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = repo::lock::LockInfo::decode(data, "fuzz");
    let _ = repo::settings::Settings::decode(data);
});
