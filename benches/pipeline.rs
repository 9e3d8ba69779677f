//! Micro-benchmarks of the pipeline stages: chunking, hashing, compress+encrypt, pack
//! building, tree encoding, index look-ups and inserts (1M and 10M entries), and the
//! whole snapshot pipeline on incompressible data with the in-memory backend.
//! `cargo bench` runs them; `cargo test --all-targets` runs each once, on small inputs,
//! so they never rot.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use repo::backend::memory::MemoryBackend;
use repo::config::RepoConfig;
use repo::key::KdfParams;
use repo::ops::context::Ctx;
use repo::ops::snapshot::{self, SnapshotRequest};
use repo::repository::Repository;

use repo::blob::{self, BlobKind};
use repo::chunk::{Chunker, ChunkerParams};
use repo::crypto::MasterKey;
use repo::hash::IdHasher;
use repo::id::{BlobId, ChunkId, PackId};
use repo::index::segment::PackRecord;
use repo::index::RocksIndex;
use repo::pack::writer::PackBuilder;
use repo::pack::PackEntry;
use repo::tree::{self, Node, NodeKind, Tree};

/// Source-code-like bytes: compressible but not trivially so.
fn text_like(len: usize) -> Vec<u8> {
    let words = [
        "fn ", "let ", "match ", "self", "&mut ", "Result<", "()", "{\n", "}\n", "    ", "// ",
        "impl ", "pub ", "use ", "::",
    ];
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(words[(s % words.len() as u64) as usize].as_bytes());
        if s % 7 == 0 {
            out.extend_from_slice(format!("x{}", s % 1000).as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn random(len: usize) -> Vec<u8> {
    let mut s: u64 = 12345;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn stages(c: &mut Criterion) {
    let key = MasterKey::from_secret([7; 32]);
    let data = text_like(32 << 20);
    let noise = random(32 << 20);
    let mut g = c.benchmark_group("stages");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    let chunker = Chunker::new(ChunkerParams::FILES, key.chunker_seed());
    g.bench_function("chunk_fastcdc_32MiB", |b| {
        b.iter(|| black_box(chunker.cut_points(&data)))
    });
    let hasher = IdHasher::new(key.id_key());
    g.bench_function("hash_blake3_keyed_32MiB", |b| {
        b.iter(|| {
            for c in data.chunks(1 << 20) {
                black_box(hasher.chunk_id(c));
            }
        })
    });
    g.bench_function("seal_zstd3_chacha_text_32MiB", |b| {
        b.iter(|| {
            for c in data.chunks(1 << 20) {
                black_box(blob::seal(&key, c, 3));
            }
        })
    });
    g.bench_function("seal_zstd3_chacha_random_32MiB", |b| {
        b.iter(|| {
            for c in noise.chunks(1 << 20) {
                black_box(blob::seal(&key, c, 3));
            }
        })
    });
    let sealed: Vec<Vec<u8>> = data
        .chunks(1 << 20)
        .map(|c| blob::seal(&key, c, 3))
        .collect();
    g.bench_function("pack_build_32MiB", |b| {
        b.iter(|| {
            let mut p = PackBuilder::new();
            for (i, s) in sealed.iter().enumerate() {
                p.add(BlobKind::Data, BlobId([i as u8; 32]), s, 1 << 20);
            }
            black_box(
                p.finish(&key, 3)
                    .expect("a builder's entries fit a table")
                    .id,
            )
        })
    });
    g.finish();
}

fn trees(c: &mut Criterion) {
    let nodes: Vec<Node> = (0..1000)
        .map(|i| Node {
            name: format!("file-{i:05}.rs").into_bytes(),
            kind: Some(NodeKind::File),
            mode: 0o644,
            size: 4096,
            content: vec![ChunkId([i as u8; 32])],
            ..Node::default()
        })
        .collect();
    let t = Tree { nodes };
    let enc = tree::encode(&t);
    let mut g = c.benchmark_group("tree");
    g.bench_function("encode_1000_nodes", |b| {
        b.iter(|| black_box(tree::encode(&t)))
    });
    g.bench_function("decode_1000_nodes", |b| {
        b.iter(|| black_box(tree::decode(&enc, "bench").ok()))
    });
    g.finish();
}

/// Index sizes to measure: 1M and 10M entries under `cargo bench`; a small one when
/// `cargo test --all-targets` runs each benchmark once (building 10M entries takes minutes).
fn index_sizes() -> Vec<u32> {
    if std::env::args().any(|a| a == "--bench") {
        vec![1_000_000, 10_000_000]
    } else {
        vec![20_000]
    }
}

fn bench_id(i: u32) -> BlobId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    BlobId(*blake3::hash(&b).as_bytes())
}

fn entries(range: std::ops::Range<u32>) -> Vec<PackEntry> {
    range
        .map(|i| PackEntry::solo(BlobKind::Data, bench_id(i), u64::from(i), 1, 1))
        .collect()
}

fn index(c: &mut Criterion) {
    for n in index_sizes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let idx = RocksIndex::open(dir.path()).expect("open index");
        // Segments of ~10k blobs each, as the packer writes them (8 packs of ~1,250 blobs).
        let mut start = 0;
        while start < n {
            let end = (start + 10_000).min(n);
            let pack = PackId(*blake3::hash(&start.to_le_bytes()).as_bytes());
            let rec = PackRecord {
                id: pack,
                size: u64::MAX,
                entries: entries(start..end),
            };
            idx.insert(None, &[rec]).expect("insert");
            start = end;
        }
        idx.flush().expect("flush");
        let label = if n >= 1_000_000 {
            format!("{}M", n / 1_000_000)
        } else {
            format!("{}k", n / 1_000)
        };
        let mut g = c.benchmark_group(format!("index_{label}"));
        let mut i = 0u32;
        g.bench_function("lookup_hit", |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(idx.lookup(BlobKind::Data, &bench_id(i)).ok())
            })
        });
        g.bench_function("contains_miss", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(idx.contains(BlobKind::Data, &bench_id(n + (i % n))).ok())
            })
        });
        let mut next = 2 * n;
        g.throughput(Throughput::Elements(1000));
        g.bench_function("insert_batch_1000", |b| {
            b.iter_batched(
                || {
                    next += 1000;
                    entries(next..next + 1000)
                },
                |entries| {
                    idx.insert(
                        None,
                        &[PackRecord {
                            id: PackId([2; 32]),
                            size: u64::MAX,
                            entries,
                        }],
                    )
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

/// The whole chunk → hash → compress → encrypt chain on one core, the reference the
/// parallel pipeline is measured against.
fn chain_one_core(key: &MasterKey, data: &[u8]) -> usize {
    let chunker = Chunker::new(ChunkerParams::FILES, key.chunker_seed());
    let hasher = IdHasher::new(key.id_key());
    let mut sealed = 0;
    for chunk in chunker.chunks(data) {
        let chunk = chunk.expect("in-memory read");
        black_box(hasher.chunk_id(&chunk));
        sealed += blob::seal(key, &chunk, 3).len();
    }
    sealed
}

/// `repo snapshot` of one incompressible file into an in-memory repository, 2 threads:
/// the pipeline with no disk writes, to compare with 2 x `chain_one_core`.
fn pipeline(c: &mut Criterion) {
    let len = if std::env::args().any(|a| a == "--bench") {
        256 << 20
    } else {
        4 << 20
    };
    let noise = random(len);
    let key = MasterKey::from_secret([9; 32]);
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("chain_one_core_random", |b| {
        b.iter(|| black_box(chain_one_core(&key, &noise)))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("noise.bin");
    std::fs::write(&file, &noise).expect("write source");
    g.bench_function("snapshot_memory_backend_random_2_threads", |b| {
        b.iter_batched(
            || {
                let backend = Arc::new(MemoryBackend::new());
                Repository::init(
                    backend.as_ref(),
                    b"bench",
                    RepoConfig::new_default(),
                    KdfParams::with_costs(256, 1, 1),
                )
                .expect("init");
                let cache = tempfile::tempdir().expect("tempdir");
                let repo = Repository::open(backend, b"bench", cache.path()).expect("open");
                (repo, cache)
            },
            |(repo, _cache)| {
                let req = SnapshotRequest {
                    paths: vec![file.clone()],
                    threads: Some(2),
                    ..SnapshotRequest::default()
                };
                let snap = snapshot::run(&repo, &req, &Ctx::default()).expect("snapshot");
                black_box(snap.summary.bytes_added)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, stages, trees, index, pipeline);
criterion_main!(benches);
