//! Replays the fuzzing corpora (fuzz/corpus/<target>, grown by scripts/fuzz-campaign) and
//! every input that once crashed a decoder (fuzz/regressions/<target>) through the same
//! calls as the fuzz targets: a decoder of bytes from disk or the network never panics.

use std::fs;
use std::path::Path;

use repo::crypto::MasterKey;
use repo::id::{SliceId, SnapshotId};

/// The body of fuzz target `target` (fuzz/fuzz_targets/<target>.rs).
fn run(target: &str, data: &[u8]) {
    let key = MasterKey::from_secret([1; 32]);
    match target {
        "blob_envelope" => {
            let _ = repo::blob::open(&key, data, 1 << 16, "fuzz");
            if let Some((flag, payload)) = data.split_first() {
                let _ = repo::compress::decompress(*flag, payload, 1 << 16, "fuzz");
            }
        }
        "config" => {
            let _ = repo::config::RepoConfig::decode(data);
            let _ = repo::config::RepoConfig::open(&key, data);
        }
        "copy_map" => {
            let _ = repo::copy_map::parse(data);
        }
        "index_segment" => {
            if let Ok(packs) = repo::index::segment::decode(data, "fuzz") {
                assert_eq!(repo::index::segment::encode(data[4], &packs).unwrap(), data);
            }
        }
        "key_file" => {
            if let Ok(kf) = repo::key::KeyFile::decode(data) {
                if kf.kdf.memory_kib <= 64 && kf.kdf.iterations <= 2 && kf.kdf.parallelism <= 2 {
                    let _ = kf.unwrap_master(b"password");
                }
            }
        }
        "lock_settings" => {
            let _ = repo::lock::LockInfo::decode(data, "fuzz");
            let _ = repo::settings::Settings::decode(data);
            let _ = repo::journal::Record::decode(data, "fuzz");
        }
        "oplog_slice" => {
            let _ = repo::mongo::oplog::slice::Slice::decode(data, "fuzz");
            let _ = repo::mongo::oplog::slice::Slice::open(&key, data, &SliceId([0; 32]));
            let _ = repo::mongo::oplog::slice::split_entries(data);
        }
        "oplog_changes" => {
            if let Ok(entries) = repo::mongo::oplog::slice::split_entries(data) {
                let mut changes = repo::mongo::oplog::changes::Changes::default();
                for raw in entries {
                    if let Ok(doc) = bson::RawDocument::from_bytes(raw) {
                        let _ = repo::mongo::oplog::changes::entry_time(doc);
                        changes.add(doc);
                    }
                }
            }
        }
        "pack_trailer" => {
            if let Ok(entries) =
                repo::pack::reader::decode_trailer(data, data.len() as u64 * 2, "fuzz")
            {
                let again = repo::pack::writer::encode_trailer(&entries, data[4]);
                assert_eq!(again.ok().as_deref(), Some(data));
            }
            let _ = repo::pack::reader::parse_pack(&key, data, "fuzz");
        }
        "pending_record" => {
            let _ = repo::index::pending::decode(data, "fuzz");
        }
        "snapshot" => {
            let _ = repo::snapshot::Snapshot::decode(data, "fuzz");
            let _ = repo::snapshot::Snapshot::open(&key, data, &SnapshotId([0; 32]));
        }
        "tree" => {
            if let Ok(t) = repo::tree::decode(data, "fuzz") {
                assert_eq!(repo::tree::encode(&t), data, "decoded trees are canonical");
            }
        }
        other => panic!("fuzz/{other}: no such fuzz target (add it here too)"),
    }
}

fn replay(dir: &Path) -> usize {
    let mut n = 0;
    for t in fs::read_dir(dir).into_iter().flatten().flatten() {
        let target = t.file_name().to_string_lossy().into_owned();
        for input in fs::read_dir(t.path()).unwrap().flatten() {
            let data = fs::read(input.path()).unwrap();
            run(&target, &data);
            n += 1;
        }
    }
    n
}

#[test]
fn saved_fuzz_inputs_never_crash_a_decoder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = replay(&root.join("corpus"));
    replay(&root.join("regressions"));
    // Every fuzz target has a committed corpus (scripts/fuzz-campaign grows them).
    let targets = fs::read_dir(root.join("fuzz_targets")).unwrap().count();
    let with_corpus = fs::read_dir(root.join("corpus")).map_or(0, |d| d.count());
    assert_eq!(with_corpus, targets, "a fuzz target without a saved corpus");
    assert!(corpus >= targets, "{corpus} inputs");
}
