//! What BSON chunk sizes cost and save: for each candidate `chunker_bson` setting, a
//! collection stream is chunked and each chunk compressed as the repository stores it
//! (zstd level 3); then 10 scattered documents change (a field rewritten in place, as an
//! `$set` of a number does) and the bytes a second snapshot would add are counted. Prints
//! one row per setting: chunks, mean raw chunk, stored size, added bytes as a share of the
//! stored size, and chunk+compress throughput.
//!
//!   cargo bench --bench bson_chunking                       # synthetic 20,000 documents
//!   BSON_FILE=users.bson cargo bench --bench bson_chunking  # a `repo dump --format bson`
//!
//! `cargo test --all-targets` runs it once on 2,000 documents so it never rots.

use std::collections::HashSet;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use repo::chunk::{Chunker, ChunkerParams};
use repo::compress::compress_with;

const LEVEL: i32 = 3;
const SEED: u64 = 0x005e_ed0f_b50b;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (stream, offsets) = match std::env::var_os("BSON_FILE") {
        Some(path) => {
            let bytes = std::fs::read(&path).expect("reading BSON_FILE");
            let offsets = document_offsets(&bytes);
            (bytes, offsets)
        }
        None => synthetic(if bench { 20_000 } else { 2_000 }),
    };
    println!(
        "{} documents, {} bytes of BSON; 10 scattered documents changed, 5 trials",
        offsets.len(),
        stream.len()
    );
    println!(
        "{:>20} {:>7} {:>10} {:>11} {:>9} {:>9}",
        "min/avg/max KiB", "chunks", "mean raw", "stored", "added", "MB/s"
    );
    for (min, avg, max) in [(16, 64, 256), (8, 32, 128), (4, 16, 64), (2, 8, 32)] {
        let p = ChunkerParams {
            min: min * 1024,
            avg: avg * 1024,
            max: max * 1024,
            normalization: 1,
        };
        row(&format!("{min}/{avg}/{max}"), p, &stream, &offsets);
    }
}

fn row(label: &str, p: ChunkerParams, stream: &[u8], offsets: &[usize]) {
    let chunker = Chunker::new(p, SEED);
    let started = Instant::now();
    let (stored, chunks) = store(&chunker, stream, &mut HashSet::new());
    let secs = started.elapsed().as_secs_f64();
    let mut added = 0u64;
    const TRIALS: u64 = 5;
    for trial in 0..TRIALS {
        let mut seen = HashSet::new();
        store(&chunker, stream, &mut seen);
        let changed = change(stream, offsets, trial);
        added += store(&chunker, &changed, &mut seen).0;
    }
    let added = added / TRIALS;
    println!(
        "{label:>20} {chunks:>7} {:>10} {stored:>11} {:>8.1}% {:>9.0}",
        stream.len() / chunks.max(1),
        added as f64 * 100.0 / stored.max(1) as f64,
        stream.len() as f64 / secs / 1e6
    );
}

/// Chunks `data`, compresses every chunk not in `seen`, and returns the stored bytes
/// added and the number of chunks.
fn store(chunker: &Chunker, data: &[u8], seen: &mut HashSet<blake3::Hash>) -> (u64, usize) {
    let mut stored = 0u64;
    let mut n = 0;
    for chunk in chunker.chunks(data) {
        let chunk = chunk.expect("chunking memory cannot fail");
        n += 1;
        if seen.insert(blake3::hash(&chunk)) {
            stored += compress_with(&chunk, LEVEL, |_, payload| payload.len()) as u64;
        }
    }
    (stored, n)
}

/// The stream with 10 documents, chosen by `trial`, changed in the middle: the same
/// length, different bytes (an updated number).
fn change(stream: &[u8], offsets: &[usize], trial: u64) -> Vec<u8> {
    let mut out = stream.to_vec();
    let mut rng = StdRng::seed_from_u64(trial);
    for &start in offsets.choose_multiple(&mut rng, 10) {
        let len = doc_len(stream, start);
        let at = start + len / 2;
        out[at] = out[at].wrapping_add(1);
    }
    out
}

fn doc_len(b: &[u8], at: usize) -> usize {
    let mut len = [0u8; 4];
    len.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(len) as usize
}

fn document_offsets(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= b.len() {
        out.push(at);
        at += doc_len(b, at).max(5);
    }
    out
}

/// Documents shaped like a users collection: ids, names, e-mails, numbers, dates, tags,
/// free text of varied length and a sub-document, encoded as BSON by hand.
fn synthetic(n: usize) -> (Vec<u8>, Vec<usize>) {
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma",
        "omega", "river", "stone", "cloud", "north", "south",
    ];
    let mut rng = StdRng::seed_from_u64(7);
    let mut stream = Vec::new();
    let mut offsets = Vec::with_capacity(n);
    for i in 0..n {
        let pick = |rng: &mut StdRng| words[rng.gen_range(0..words.len())];
        let name = format!("{} {}", pick(&mut rng), pick(&mut rng));
        let n = rng.gen_range(0..5);
        let tags: Vec<&str> = (0..n).map(|_| pick(&mut rng)).collect();
        let n = rng.gen_range(5..60);
        let bio: Vec<&str> = (0..n).map(|_| pick(&mut rng)).collect();
        let number = rng.gen_range(1..999);
        let street = format!("{number} {} St", pick(&mut rng));
        let mut d = Doc::default();
        d.int("_id", i as i32);
        d.string("name", &name);
        d.string(
            "email",
            &format!("u{i}_{}@example.org", rng.gen_range(0..1_000_000)),
        );
        d.int("age", rng.gen_range(18..90));
        d.double("score", rng.gen());
        d.date(
            "created",
            1_577_836_800_000 + rng.gen_range(0..100_000_000_000i64),
        );
        let mut t = Doc::default();
        for (k, tag) in tags.iter().enumerate() {
            t.string(&k.to_string(), tag);
        }
        d.sub(0x04, "tags", t);
        d.string("bio", &bio.join(" "));
        let mut a = Doc::default();
        a.string("street", &street);
        a.string("zip", &format!("{:05}", rng.gen_range(0..100_000)));
        d.sub(0x03, "address", a);
        offsets.push(stream.len());
        stream.extend_from_slice(&d.finish());
    }
    (stream, offsets)
}

/// A minimal BSON document writer (the element types the synthetic documents use).
#[derive(Default)]
struct Doc(Vec<u8>);

impl Doc {
    fn key(&mut self, ty: u8, k: &str) {
        self.0.push(ty);
        self.0.extend_from_slice(k.as_bytes());
        self.0.push(0);
    }
    fn int(&mut self, k: &str, v: i32) {
        self.key(0x10, k);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn double(&mut self, k: &str, v: f64) {
        self.key(0x01, k);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn date(&mut self, k: &str, ms: i64) {
        self.key(0x09, k);
        self.0.extend_from_slice(&ms.to_le_bytes());
    }
    fn string(&mut self, k: &str, v: &str) {
        self.key(0x02, k);
        self.0
            .extend_from_slice(&(v.len() as i32 + 1).to_le_bytes());
        self.0.extend_from_slice(v.as_bytes());
        self.0.push(0);
    }
    fn sub(&mut self, ty: u8, k: &str, d: Doc) {
        self.key(ty, k);
        self.0.extend_from_slice(&d.finish());
    }
    fn finish(self) -> Vec<u8> {
        let len = (self.0.len() + 5) as i32;
        let mut out = len.to_le_bytes().to_vec();
        out.extend_from_slice(&self.0);
        out.push(0);
        out
    }
}
