//! Lock objects, the settings object and operation-log records (all sealed JSON).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = repo::lock::LockInfo::decode(data, "fuzz");
    let _ = repo::settings::Settings::decode(data);
    let _ = repo::journal::Record::decode(data, "fuzz");
});
