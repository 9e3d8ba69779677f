//! Micro-benchmarks of the pipeline stages: chunking, hashing, compress+encrypt, pack
//! building, tree encoding and index look-ups. `cargo bench` runs them; `cargo test
//! --all-targets` runs each once so they never rot.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

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
            black_box(p.finish(&key).id)
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

fn index(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let idx = RocksIndex::open(dir.path()).expect("open index");
    const N: u32 = 100_000;
    let id = |i: u32| {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_le_bytes());
        BlobId(*blake3::hash(&b).as_bytes())
    };
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let entries: Vec<PackEntry> = chunk
            .iter()
            .map(|&i| PackEntry {
                kind: BlobKind::Data,
                id: id(i),
                offset: u64::from(i),
                length: 1,
                raw_length: 1,
            })
            .collect();
        idx.insert(
            None,
            &[PackRecord {
                id: PackId([1; 32]),
                size: u64::MAX,
                entries,
            }],
        )
        .expect("insert");
    }
    idx.flush().expect("flush");
    let mut g = c.benchmark_group("index");
    let mut i = 0u32;
    g.bench_function("lookup_hit_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(idx.lookup(BlobKind::Data, &id(i)).ok())
        })
    });
    g.bench_function("lookup_miss_100k", |b| {
        b.iter(|| {
            i += 1;
            black_box(idx.lookup(BlobKind::Data, &id(N + i)).ok())
        })
    });
    g.bench_function("insert_batch_1000", |b| {
        b.iter_batched(
            || {
                i += 1000;
                (0..1000u32)
                    .map(|k| PackEntry {
                        kind: BlobKind::Data,
                        id: id(2 * N + i + k),
                        offset: 0,
                        length: 1,
                        raw_length: 1,
                    })
                    .collect::<Vec<_>>()
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

criterion_group!(benches, stages, trees, index);
criterion_main!(benches);
