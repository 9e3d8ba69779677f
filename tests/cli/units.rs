//! Compression units (format version 2): small files are compressed together, and every
//! path that reads or moves blobs — restore, check, prune's repack, copy, a version 1
//! repository — still sees each blob by itself. Version 3 lists the same blobs in entry
//! tables; each version writes only its own structures.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{assert_same_tree, random_bytes, Env};

/// Source-like small text files: distinct, but sharing a vocabulary the way files of one
/// project do (what units exist for).
fn write_sources(dir: &Path, n: usize, seed: u64) {
    const WORDS: [&str; 24] = [
        "static",
        "int",
        "return",
        "struct",
        "device",
        "buffer",
        "const",
        "unsigned",
        "if",
        "else",
        "for",
        "while",
        "mutex_lock",
        "kfree",
        "NULL",
        "err",
        "goto",
        "out",
        "size_t",
        "memcpy",
        "spin_unlock",
        "irq",
        "queue",
        "ops",
    ];
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let sub = dir.join(format!("d{}", i % 7));
        fs::create_dir_all(&sub).unwrap();
        let lines = 40 + next() % 120;
        let mut text = format!("/* file {i} of seed {seed} */\n");
        for _ in 0..lines {
            let words = 3 + next() % 8;
            for _ in 0..words {
                text.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
                text.push(' ');
            }
            text.push_str(&format!("{};\n", next() % 1000));
        }
        fs::write(sub.join(format!("f{i}.c")), text).unwrap();
    }
    // Two files too large for units, one incompressible.
    fs::write(dir.join("big.bin"), random_bytes(300 << 10, seed)).unwrap();
    fs::write(dir.join("big.txt"), "0123456789abcdef\n".repeat(20_000)).unwrap();
}

fn repo_bytes(repo: &Path) -> u64 {
    crate::common::objects(repo)
        .iter()
        .filter(|(k, _)| k.starts_with("packs/"))
        .map(|(_, v)| v)
        .sum()
}

/// (trailer version, entries) of every pack in the repository at `repo`, by pack file.
fn trailers(env: &Env, repo: &Path) -> Vec<(u8, Vec<repo::pack::PackEntry>, PathBuf)> {
    let r = env.library(repo);
    let mut out = Vec::new();
    for name in crate::common::objects(repo).keys() {
        if !name.starts_with("packs/") {
            continue;
        }
        let bytes = fs::read(repo.join(name)).unwrap();
        let n = bytes.len();
        let tlen = u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()) as usize;
        let plain = r.key().open(&bytes[n - 4 - tlen..n - 4], "t").unwrap();
        let entries = repo::pack::reader::parse_pack(r.key(), &bytes, name).unwrap();
        out.push((plain[4], entries, repo.join(name)));
    }
    out
}

#[test]
fn small_files_share_units_and_survive_prune_copy_and_check() {
    let env = Env::new();
    let src = env.path("src");
    write_sources(&src, 900, 7);
    env.init();
    let v1 = env.path("repo-v1");
    env.ok(&["init", "-r", v1.to_str().unwrap(), "--format-version", "1"]);
    let first = env.snapshot(&[&src]);
    env.ok(&[
        "snapshot",
        "-r",
        v1.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);

    // Version 2 groups the small files; version 1 keeps one blob per envelope.
    let (v2_size, v1_size) = (repo_bytes(&env.repo()), repo_bytes(&v1));
    assert!(
        v2_size * 10 < v1_size * 9,
        "units should save over 10% here: {v2_size} vs {v1_size}"
    );
    let units = trailers(&env, &env.repo());
    assert!(units
        .iter()
        .all(|(v, _, _)| *v == repo::pack::TABLE_VERSION));
    let shared = units
        .iter()
        .flat_map(|(_, es, _)| es)
        .filter(|e| !e.is_solo())
        .count();
    assert!(shared > 800, "{shared} blobs in units");
    for (v, es, _) in trailers(&env, &v1) {
        assert_eq!(v, 1);
        assert!(es.iter().all(|e| e.is_solo()));
    }

    // Half of the files go, some change: the first snapshot's units become partly dead.
    for i in (0..900).step_by(2) {
        fs::remove_file(src.join(format!("d{}/f{i}.c", i % 7))).unwrap();
    }
    for i in (1..900).step_by(50) {
        let p = src.join(format!("d{}/f{i}.c", i % 7));
        let mut t = fs::read(&p).unwrap();
        t.extend_from_slice(b"/* edited */\n");
        fs::write(&p, t).unwrap();
    }
    let second = env.snapshot(&[&src]);
    env.ok(&["forget", first["id"].as_str().unwrap()]);
    let pruned = env.json(&["prune", "--max-unused", "0", "--grace", "0"]);
    assert!(pruned["blobs_copied"].as_u64().unwrap() > 0, "{pruned}");
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["findings"].as_array().unwrap().len(), 0, "{check}");
    // Units rewritten by prune hold exactly the live blobs, nothing dead is kept.
    let stats = env.json(&["stats"]);
    assert_eq!(stats["reclaimable_bytes"].as_u64(), Some(0), "{stats}");

    let out = env.path("out");
    env.ok(&[
        "restore",
        second["id"].as_str().unwrap(),
        "--target",
        out.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));

    // Into a version 1 repository: units are opened and the blobs stored alone.
    let mut c = env.cmd(&[
        "copy",
        "-r",
        v1.to_str().unwrap(),
        "--from",
        env.repo().to_str().unwrap(),
    ]);
    c.env("REPO_FROM_PASSWORD", "correct horse battery staple");
    crate::common::ok_output(c);
    let out1 = env.path("out1");
    env.ok(&[
        "restore",
        "-r",
        v1.to_str().unwrap(),
        "latest",
        "--target",
        out1.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &out1.join(src.strip_prefix("/").unwrap()));
    for (v, es, _) in trailers(&env, &v1) {
        assert_eq!(v, 1);
        assert!(es.iter().all(|e| e.is_solo()));
    }
}

/// The structure version byte of every index segment in the repository at `repo`.
fn segment_versions(env: &Env, repo: &Path) -> Vec<u8> {
    let r = env.library(repo);
    crate::common::objects(repo)
        .keys()
        .filter(|n| n.starts_with("index/"))
        .map(|n| {
            let plain = r.key().open(&fs::read(repo.join(n)).unwrap(), n).unwrap();
            repo::index::segment::decode(&plain, n).unwrap();
            plain[4]
        })
        .collect()
}

/// Each format version writes only its own trailers and segments — through a backup, a
/// prune that repacks units, and a rebuild of the index from the packs' trailers — and
/// reads them back to the same files. Version 3 (entry tables) lists blobs in fewer bytes;
/// version 4 writes version 3's structures.
#[test]
fn every_format_version_keeps_to_its_own_structures() {
    let env = Env::new();
    let src = env.path("src");
    write_sources(&src, 400, 11);
    let mut index_bytes = Vec::new();
    for version in [2u8, 3, 4] {
        let structures = version.min(3);
        let r = env.path(&format!("repo-v{version}"));
        let rs = r.to_str().unwrap();
        env.ok(&["init", "-r", rs, "--format-version", &version.to_string()]);
        let first = env.json(&["snapshot", "-r", rs, src.to_str().unwrap()]);
        let f = src.join("d1/f1.c");
        let mut t = fs::read(&f).unwrap();
        t.extend_from_slice(b"/* edited */\n");
        fs::write(&f, t).unwrap();
        fs::remove_file(src.join(format!("d{version}/f{version}.c"))).unwrap();
        env.ok(&["snapshot", "-r", rs, src.to_str().unwrap()]);
        env.ok(&["forget", "-r", rs, first["id"].as_str().unwrap()]);
        let pruned = env.json(&["prune", "-r", rs, "--max-unused", "0", "--grace", "0"]);
        assert!(pruned["blobs_copied"].as_u64().unwrap() > 0, "{pruned}");

        // Every segment gone: the trailers alone tell where each blob is.
        for n in crate::common::objects(&r)
            .keys()
            .filter(|n| n.starts_with("index/"))
        {
            fs::remove_file(r.join(n)).unwrap();
        }
        let rebuilt = env.json(&["index", "rebuild", "-r", rs, "--from-packs"]);
        assert!(rebuilt.to_string().contains("pack"), "{rebuilt}");

        for (v, es, pack) in trailers(&env, &r) {
            assert_eq!(v, structures, "{}", pack.display());
            assert!(!es.is_empty());
        }
        let segs = segment_versions(&env, &r);
        assert!(
            !segs.is_empty() && segs.iter().all(|&v| v == structures),
            "{segs:?}"
        );
        index_bytes.push(
            crate::common::objects(&r)
                .iter()
                .filter(|(k, _)| k.starts_with("index/"))
                .map(|(_, v)| v)
                .sum::<u64>(),
        );
        let check = env.json(&["check", "-r", rs, "--read-data"]);
        assert_eq!(check["findings"].as_array().unwrap().len(), 0, "{check}");
        let out = env.path(&format!("out-v{version}"));
        env.ok(&[
            "restore",
            "-r",
            rs,
            "latest",
            "--target",
            out.to_str().unwrap(),
        ]);
        assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
    }
    // 400 small files: 57 bytes a blob in version 2, about 34 in version 3.
    assert!(
        index_bytes[1] * 10 < index_bytes[0] * 7,
        "segments: version 3 {} bytes, version 2 {}",
        index_bytes[1],
        index_bytes[0]
    );
}

#[test]
fn damage_inside_a_unit_names_every_blob_it_holds() {
    let env = Env::new();
    let src = env.path("src");
    write_sources(&src, 300, 3);
    env.init();
    env.snapshot(&[&src]);
    // The largest unit of any pack.
    let (pack, unit) = trailers(&env, &env.repo())
        .into_iter()
        .flat_map(|(_, es, pack)| {
            let mut by_unit: std::collections::BTreeMap<u64, Vec<repo::pack::PackEntry>> =
                Default::default();
            for e in es.into_iter().filter(|e| !e.is_solo()) {
                by_unit.entry(e.offset).or_default().push(e);
            }
            by_unit.into_values().map(move |u| (pack.clone(), u))
        })
        .max_by_key(|(_, u)| u.len())
        .expect("a unit");
    assert!(unit.len() > 1);
    let mut b = fs::read(&pack).unwrap();
    b[(unit[0].offset + u64::from(unit[0].length) / 2) as usize] ^= 0x40;
    fs::write(&pack, b).unwrap();
    let o = env.run(&["check", "--read-data", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let damaged: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "blob_damaged")
        .collect();
    let text = serde_json::to_string(&damaged).unwrap();
    for e in &unit {
        assert!(
            text.contains(&e.id.short()),
            "{} not reported: {text}",
            e.id.short()
        );
    }
    // Restore still writes every file whose blobs are intact, and says which are not.
    let out = env.path("out");
    let o = env.run(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
}
