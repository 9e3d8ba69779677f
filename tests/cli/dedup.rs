//! Deduplication: unchanged data, copies and small edits add (almost) nothing.

use std::fs;

use crate::common::{random_bytes, write_big_file, Env};

fn added(s: &serde_json::Value) -> (u64, u64) {
    (
        s["summary"]["blobs_added"].as_u64().unwrap(),
        s["summary"]["bytes_added_raw"].as_u64().unwrap(),
    )
}

#[test]
fn same_data_twice_adds_nothing_and_copies_add_no_data() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    write_big_file(&src.join("sub/data.bin"), 20 << 20, 11);
    for i in 0..50 {
        fs::write(
            src.join(format!("small-{i}")),
            random_bytes(1000 + i, i as u64),
        )
        .unwrap();
    }
    env.init();
    let first = env.snapshot(&[&src]);
    assert!(added(&first).1 >= 20 << 20);

    // Ancestors of the source (the shared temp dir) may change between runs as other
    // tests create entries there; at most their few small tree blobs are new.
    let second = env.snapshot(&[&src]);
    let (blobs, raw) = added(&second);
    assert!(
        blobs <= 2 && raw < 4096,
        "identical second snapshot stored data: {second}"
    );
    let ls = |s: &serde_json::Value| {
        env.ok(&["ls", s["id"].as_str().unwrap(), src.to_str().unwrap(), "-l"])
    };
    assert_eq!(ls(&first), ls(&second), "same tree must list the same");

    fs::copy(src.join("sub/data.bin"), src.join("copy-of-data.bin")).unwrap();
    let third = env.snapshot(&[&src]);
    let (blobs, raw) = added(&third);
    // Only trees change: the root path's directories, each a few KiB at most.
    assert!(blobs <= 6, "copy added {blobs} blobs");
    assert!(raw < 64 * 1024, "copy added {raw} raw bytes");
}

#[test]
fn ten_bytes_inserted_in_100mb_adds_a_few_chunks() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let file = src.join("big.bin");
    let mut data = random_bytes(100 << 20, 99);
    fs::write(&file, &data).unwrap();
    env.init();
    env.snapshot(&[&src]);
    let mid = data.len() / 2;
    data.splice(mid..mid, *b"0123456789");
    fs::write(&file, &data).unwrap();
    drop(data);
    let snap = env.snapshot(&[&src]);
    let (blobs, raw) = added(&snap);
    assert!(blobs <= 8, "insert added {blobs} blobs");
    assert!(
        raw < 20 << 20,
        "insert added {raw} raw bytes (more than a few chunks)"
    );

    let target = env.path("t");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = fs::read(target.join(file.strip_prefix("/").unwrap()).as_path()).unwrap();
    assert_eq!(restored.len(), (100 << 20) + 10);
    assert_eq!(&restored[(50 << 20)..(50 << 20) + 10], b"0123456789");
}
