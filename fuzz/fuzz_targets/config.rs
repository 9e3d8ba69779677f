//! Config plaintext and sealed configs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use repo::crypto::MasterKey;

fuzz_target!(|data: &[u8]| {
    let _ = repo::config::RepoConfig::decode(data);
    let _ = repo::config::RepoConfig::open(&MasterKey::from_secret([1; 32]), data);
});
