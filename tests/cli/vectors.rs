//! Golden vectors in format-spec/vectors/: committed bytes that this build must decode to
//! the values below. A change that breaks them breaks every existing repository.
//! `cargo test -- --ignored write_vectors` regenerates them (only for a new format version).

use std::path::PathBuf;

use repo::blob::{self, BlobKind};
use repo::config::RepoConfig;
use repo::crypto::MasterKey;
use repo::id::{BlobId, ChunkId, SnapshotId, TreeId};
use repo::index::segment;
use repo::key::KeyFile;
use repo::pack::reader::parse_pack;
use repo::snapshot::Snapshot;
use repo::tree::{self, Node, NodeKind, Timestamp, Tree};

const PASSWORD: &[u8] = b"vector password";
const SECRET: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// Keyed BLAKE3 of b"hello, repo\n" under the id key derived from SECRET.
const HELLO_ID: &str = include_str!("../../format-spec/vectors/hello.id");

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sample_tree() -> Tree {
    let file = Node {
        name: b"hello.txt".to_vec(),
        kind: Some(NodeKind::File),
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        user: "alice".into(),
        group: "staff".into(),
        mtime: Timestamp {
            sec: 1_764_322_800,
            nsec: 123_456_789,
        },
        ctime: Timestamp {
            sec: 1_764_322_801,
            nsec: 5,
        },
        size: 12,
        inode: 42,
        device: 2049,
        links: 1,
        content: vec![ChunkId(hex32(HELLO_ID.trim()))],
        xattrs: vec![(b"user.note".to_vec(), b"hi".to_vec())],
        ..Node::default()
    };
    let link = Node {
        name: b"link".to_vec(),
        kind: Some(NodeKind::Symlink),
        mode: 0o777,
        target: b"hello.txt".to_vec(),
        ..Node::default()
    };
    let dir = Node {
        name: b"sub\xff".to_vec(),
        kind: Some(NodeKind::Dir),
        mode: 0o755,
        subtree: Some(TreeId([7; 32])),
        ..Node::default()
    };
    let mut t = Tree {
        nodes: vec![file, link, dir],
    };
    t.sort();
    t
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).expect("hex");
    out
}

#[test]
fn vectors_decode() {
    let kf = KeyFile::decode(&read("key.json")).unwrap();
    let master = kf
        .unwrap_master(PASSWORD)
        .unwrap()
        .expect("password opens the vector key");
    assert_eq!(master.secret(), &SECRET);
    assert!(kf.unwrap_master(b"wrong").unwrap().is_none());

    let cfg = RepoConfig::open(&master, &read("config.bin")).unwrap();
    assert_eq!(cfg.version, 1);
    assert_eq!(cfg.chunker_files.avg, 1 << 20);

    let hasher = repo::hash::IdHasher::new(master.id_key());
    assert_eq!(hasher.chunk_id(b"hello, repo\n").to_hex(), HELLO_ID.trim());

    let tree_plain = read("tree.plain");
    assert_eq!(tree::decode(&tree_plain, "vector").unwrap(), sample_tree());
    assert_eq!(
        tree::encode(&sample_tree()),
        tree_plain,
        "tree encoding is canonical"
    );

    let pack = read("pack.bin");
    let entries = parse_pack(&master, &pack, "vector pack").unwrap();
    assert_eq!(entries.len(), 2);
    let data = &entries[0];
    assert_eq!(data.kind, BlobKind::Data);
    assert_eq!(data.id, BlobId(hex32(HELLO_ID.trim())));
    let sealed = &pack[data.offset as usize..(data.offset + u64::from(data.length)) as usize];
    assert_eq!(
        blob::open(&master, sealed, data.raw_length as usize, "v").unwrap(),
        b"hello, repo\n"
    );
    let t = &entries[1];
    assert_eq!(t.kind, BlobKind::Tree);
    let sealed = &pack[t.offset as usize..(t.offset + u64::from(t.length)) as usize];
    assert_eq!(
        blob::open(&master, sealed, t.raw_length as usize, "v").unwrap(),
        tree_plain
    );
    assert_eq!(t.id, BlobId::from(hasher.tree_id(&tree_plain)));

    let seg_bytes = read("segment.bin");
    let seg = segment::decode(&master.open(&seg_bytes, "seg").unwrap(), "seg").unwrap();
    assert_eq!(seg.len(), 1);
    assert_eq!(seg[0].size, pack.len() as u64);
    assert_eq!(seg[0].entries, entries);
    assert_eq!(
        seg[0].id.0,
        *blake3::hash(&pack).as_bytes(),
        "packs are named by BLAKE3 of their bytes"
    );

    let snap_id: SnapshotId = String::from_utf8(read("snapshot.id"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let snap = Snapshot::open(&master, &read("snapshot.bin"), &snap_id).unwrap();
    assert_eq!(snap.tree, hasher.tree_id(&tree_plain));
    assert_eq!(snap.paths, vec!["/home/alice".to_string()]);
    assert_eq!(
        snap.time.to_rfc3339(),
        "2026-11-28T09:00:00.123456789+00:00"
    );
}

#[test]
#[ignore = "regenerates the committed vectors; run only when the format version changes"]
fn write_vectors() {
    use repo::key::KdfParams;
    use repo::pack::writer::PackBuilder;
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    let master = MasterKey::from_secret(SECRET);
    let kf = KeyFile::wrap(&master, PASSWORD, KdfParams::with_costs(1024, 1, 1)).unwrap();
    std::fs::write(d.join("key.json"), kf.encode()).unwrap();
    let mut cfg = RepoConfig::new_default();
    cfg.id = repo::id::RepoId([9; 32]);
    cfg.version = 1;
    std::fs::write(d.join("config.bin"), cfg.seal(&master)).unwrap();
    let hasher = repo::hash::IdHasher::new(master.id_key());
    let hello = hasher.chunk_id(b"hello, repo\n");
    std::fs::write(d.join("hello.id"), format!("{}\n", hello.to_hex())).unwrap();
    let mut t = sample_tree();
    t.nodes.iter_mut().for_each(|n| {
        if n.kind() == NodeKind::File {
            n.content = vec![hello]
        }
    });
    let plain = tree::encode(&t);
    std::fs::write(d.join("tree.plain"), &plain).unwrap();
    let mut pb = PackBuilder::new();
    pb.add(
        BlobKind::Data,
        hello.into(),
        &blob::seal(&master, b"hello, repo\n", 3),
        12,
    );
    let tid = hasher.tree_id(&plain);
    pb.add(
        BlobKind::Tree,
        tid.into(),
        &blob::seal(&master, &plain, 3),
        plain.len() as u32,
    );
    let p = pb.finish(&master, 1).unwrap();
    std::fs::write(d.join("pack.bin"), &p.bytes).unwrap();
    let rec = segment::PackRecord {
        id: p.id,
        size: p.bytes.len() as u64,
        entries: p.entries,
    };
    let (_, seg) = segment::seal(&master, 1, &[rec]).unwrap();
    std::fs::write(d.join("segment.bin"), seg).unwrap();
    let snap = Snapshot {
        version: 1,
        id: SnapshotId([3; 32]),
        time: chrono::DateTime::parse_from_rfc3339("2026-11-28T09:00:00.123456789Z")
            .unwrap()
            .into(),
        host: "vector-host".into(),
        user: "alice".into(),
        source: repo::snapshot::Source {
            kind: "files".into(),
            description: "/home/alice".into(),
        },
        paths: vec!["/home/alice".into()],
        tags: vec!["daily".into()],
        parent: None,
        tree: tid,
        summary: Default::default(),
        excludes: Default::default(),
        mongodb: None,
        repaired: None,
    };
    std::fs::write(d.join("snapshot.id"), format!("{}\n", snap.id.to_hex())).unwrap();
    std::fs::write(d.join("snapshot.bin"), snap.seal(&master)).unwrap();
}

/// Format versions 2 and 3: `pack-vN.bin` holds one compression unit with the data blobs
/// `hello, repo\n` and `hello, units\n`, then the vector tree alone in its envelope;
/// `segment-vN.bin` describes it and `config-vN.bin` is a version N config. Version 3
/// states the same entries as entry tables.
fn vectors_with_units_decode(version: u8) {
    let master = MasterKey::from_secret(SECRET);
    let cfg = RepoConfig::open(&master, &read(&format!("config-v{version}.bin"))).unwrap();
    assert_eq!(cfg.version, u32::from(version));
    assert_eq!(cfg.structure_version(), version);
    let hasher = repo::hash::IdHasher::new(master.id_key());
    let pack = read(&format!("pack-v{version}.bin"));
    let entries = parse_pack(&master, &pack, "vector pack").unwrap();
    assert_eq!(entries.len(), 3);
    let (a, b, t) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(
        (a.offset, a.length),
        (b.offset, b.length),
        "one unit, one envelope"
    );
    assert_eq!((a.unit_offset, a.raw_length, a.unit_length), (0, 12, 25));
    assert_eq!((b.unit_offset, b.raw_length, b.unit_length), (12, 13, 25));
    let sealed = &pack[a.offset as usize..(a.offset + u64::from(a.length)) as usize];
    let unit = blob::open(&master, sealed, a.unit_length as usize, "v").unwrap();
    assert_eq!(unit, b"hello, repo\nhello, units\n");
    assert_eq!(a.id, BlobId(hex32(HELLO_ID.trim())));
    assert_eq!(b.id, BlobId::from(hasher.chunk_id(b"hello, units\n")));
    assert!(t.is_solo());
    assert_eq!(t.kind, BlobKind::Tree);
    assert_eq!(t.offset, a.offset + u64::from(a.length), "back to back");
    let sealed = &pack[t.offset as usize..(t.offset + u64::from(t.length)) as usize];
    assert_eq!(
        blob::open(&master, sealed, t.unit_length as usize, "v").unwrap(),
        read("tree.plain")
    );
    let seg = read(&format!("segment-v{version}.bin"));
    let seg = segment::decode(&master.open(&seg, "seg").unwrap(), "seg").unwrap();
    assert_eq!(seg.len(), 1);
    assert_eq!(seg[0].entries, entries);
    assert_eq!(seg[0].id.0, *blake3::hash(&pack).as_bytes());
}

#[test]
fn vectors_v2_decode() {
    vectors_with_units_decode(2);
}

#[test]
fn vectors_v3_decode() {
    vectors_with_units_decode(3);
}

fn write_vectors_with_units(version: u8) {
    use repo::pack::writer::PackBuilder;
    use repo::unit::Grouper;
    let d = dir();
    let master = MasterKey::from_secret(SECRET);
    let mut cfg = RepoConfig::new_default().with_version(u32::from(version));
    cfg.id = repo::id::RepoId([9; 32]);
    std::fs::write(d.join(format!("config-v{version}.bin")), cfg.seal(&master)).unwrap();
    let hasher = repo::hash::IdHasher::new(master.id_key());
    let mut g = Grouper::with(&master, 3, true);
    let mut pb = PackBuilder::new();
    for data in [&b"hello, repo\n"[..], b"hello, units\n"] {
        assert!(g
            .push(BlobKind::Data, hasher.chunk_id(data).into(), data)
            .is_none());
    }
    let plain = read("tree.plain");
    let tree = Grouper::with(&master, 3, false)
        .push(BlobKind::Tree, hasher.tree_id(&plain).into(), &plain)
        .unwrap();
    if let Some(u) = g.flush() {
        pb.add_unit(&u);
    }
    pb.add_unit(&tree);
    let p = pb.finish(&master, version).unwrap();
    std::fs::write(d.join(format!("pack-v{version}.bin")), &p.bytes).unwrap();
    let rec = segment::PackRecord {
        id: p.id,
        size: p.bytes.len() as u64,
        entries: p.entries,
    };
    let (_, seg) = segment::seal(&master, version, &[rec]).unwrap();
    std::fs::write(d.join(format!("segment-v{version}.bin")), seg).unwrap();
}

/// Format version 4 changes only the config (`chunker_small_files`); its packs and
/// segments are version 3's.
#[test]
fn vector_v4_config_decodes() {
    let master = MasterKey::from_secret(SECRET);
    let cfg = RepoConfig::open(&master, &read("config-v4.bin")).unwrap();
    assert_eq!((cfg.version, cfg.structure_version()), (4, 3));
    assert_eq!(cfg.id, repo::id::RepoId([9; 32]));
    let small = cfg.chunker_small_files.unwrap();
    assert_eq!(
        (
            small.below,
            small.params.min,
            small.params.avg,
            small.params.max
        ),
        (1 << 20, 8192, 32768, 131072)
    );
    assert_eq!(small.params.normalization, 1);
    assert_eq!(cfg.chunker_files, repo::chunk::ChunkerParams::FILES);
    // The older configs do not state it.
    for v in [2, 3] {
        let old = RepoConfig::open(&master, &read(&format!("config-v{v}.bin"))).unwrap();
        assert_eq!(old.chunker_small_files, None);
    }
}

#[test]
#[ignore = "regenerates the committed version 4 config"]
fn write_vector_v4_config() {
    let master = MasterKey::from_secret(SECRET);
    let mut cfg = RepoConfig::new_default().with_version(4);
    cfg.id = repo::id::RepoId([9; 32]);
    std::fs::write(dir().join("config-v4.bin"), cfg.seal(&master)).unwrap();
}

#[test]
#[ignore = "regenerates the committed version 2 vectors"]
fn write_vectors_v2() {
    write_vectors_with_units(2);
}

#[test]
#[ignore = "regenerates the committed version 3 vectors"]
fn write_vectors_v3() {
    write_vectors_with_units(3);
}
