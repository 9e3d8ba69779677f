//! Oplog entries (from slices on disk or the server) and change events (from the server)
//! read for which collections they touch, and resume tokens (from the server and from
//! snapshots) for the position they name: whatever the bytes, no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use repo::mongo::oplog::changes::{entry_time, Changes};
use repo::mongo::oplog::event::{as_entry, sequence};

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = repo::mongo::oplog::slice::split_entries(data) else {
        return;
    };
    let mut changes = Changes::default();
    for raw in entries {
        if let Ok(doc) = bson::RawDocument::from_bytes(raw) {
            let _ = entry_time(doc);
            changes.add(doc);
            changes.add(&as_entry(doc));
            let _ = sequence(doc);
        }
    }
    let _ = changes.touches("a", "b");
});
