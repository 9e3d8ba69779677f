//! Key files; unwrapping is tried only with cheap KDF parameters.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(kf) = repo::key::KeyFile::decode(data) {
        if kf.kdf.memory_kib <= 64 && kf.kdf.iterations <= 2 && kf.kdf.parallelism <= 2 {
            let _ = kf.unwrap_master(b"password");
        }
    }
});
