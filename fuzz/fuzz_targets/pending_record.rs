//! Records of packs marked for deletion (`pending/`): decoded from untrusted JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packs) = repo::index::pending::decode(data, "fuzz") {
        for p in packs {
            let _ = (p.marked.timestamp(), p.size, p.reason);
        }
    }
});
