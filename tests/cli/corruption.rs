//! Damaged packs are reported precisely and never restored as wrong bytes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{random_bytes, write_big_file, Env};

fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("packs")).unwrap() {
        for f in fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out
}

struct Setup {
    env: Env,
    src: PathBuf,
    first: String,
    second: String,
    /// Data packs written by the first snapshot: they hold only victim.bin.
    victim_packs: Vec<PathBuf>,
}

/// Two snapshots; `victim.bin` is in both, `other.bin` only in the first.
fn setup() -> Setup {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    write_big_file(&src.join("victim.bin"), 3 << 20, 1);
    env.ok(&["init", "--pack-size-mib", "1"]);
    let first = env.snapshot(&[&src])["id"].as_str().unwrap()[..8].to_string();
    let mut victim_packs: Vec<PathBuf> = packs(&env.repo())
        .into_iter()
        .filter(|p| fs::metadata(p).unwrap().len() > 500_000)
        .collect();
    victim_packs.sort();
    fs::write(src.join("other.bin"), random_bytes(100_000, 2)).unwrap();
    let second = env.snapshot(&[&src])["id"].as_str().unwrap()[..8].to_string();
    Setup {
        env,
        src,
        first,
        second,
        victim_packs,
    }
}

/// A data pack holding part of `victim.bin` (and nothing of `other.bin`).
fn victim_pack(s: &Setup) -> PathBuf {
    s.victim_packs.first().cloned().expect("a data pack")
}

fn flip_byte(p: &Path, at: u64) {
    let mut b = fs::read(p).unwrap();
    b[at as usize] ^= 0x40;
    fs::write(p, b).unwrap();
}

fn short(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap()[..8].to_string()
}

fn check_fails(s: &Setup, read_data: bool) -> String {
    let args: &[&str] = if read_data {
        &["check", "--read-data"]
    } else {
        &["check"]
    };
    let out = s.env.run(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "check must fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("check found"));
    String::from_utf8(out.stdout).unwrap()
}

fn assert_restore_refuses(s: &Setup, tag: &str) {
    let target = s.env.path(tag);
    let out = s
        .env
        .run(&["restore", &s.second, "--target", target.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "restore of a damaged file must fail"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("victim.bin"), "{err}");
    let base = target.join(s.src.strip_prefix("/").unwrap());
    assert!(
        !base.join("victim.bin").exists(),
        "a damaged file must not be written"
    );
    assert_eq!(
        fs::read(base.join("other.bin")).unwrap(),
        random_bytes(100_000, 2),
        "undamaged files still restore"
    );
}

#[test]
fn flipped_byte_is_found_and_attributed() {
    let s = setup();
    let pack = victim_pack(&s);
    flip_byte(&pack, 1000);
    // Without --read-data the trailer still authenticates; the blob damage needs a read.
    let report = check_fails(&s, true);
    assert!(
        report.contains(&format!("pack {}", short(&pack))),
        "{report}"
    );
    assert!(
        report.contains(&s.first) && report.contains(&s.second),
        "both snapshots are affected: {report}"
    );
    assert!(report.contains("victim.bin"), "{report}");
    assert!(!report.contains("other.bin"), "{report}");
    assert_restore_refuses(&s, "t1");
}

#[test]
fn truncated_pack_is_found_without_reading_data() {
    let s = setup();
    let pack = victim_pack(&s);
    let len = fs::metadata(&pack).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let report = check_fails(&s, false);
    assert!(
        report.contains(&format!("pack {}", short(&pack))),
        "{report}"
    );
    assert!(report.contains("truncated"), "{report}");
    assert!(report.contains("victim.bin"), "{report}");
    let report = check_fails(&s, true);
    assert!(report.contains(&s.second), "{report}");
    assert_restore_refuses(&s, "t2");
}

#[test]
fn deleted_pack_is_found() {
    let s = setup();
    let pack = victim_pack(&s);
    fs::remove_file(&pack).unwrap();
    let report = check_fails(&s, false);
    assert!(
        report.contains(&format!("pack {}: missing", short(&pack))),
        "{report}"
    );
    assert!(
        report.contains(&s.first) && report.contains(&s.second),
        "{report}"
    );
    assert_restore_refuses(&s, "t3");
}

#[test]
fn healthy_repository_passes() {
    let s = setup();
    let out = s.env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    let v = s.env.json(&["check"]);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v}");
}

#[test]
fn a_damaged_tree_is_its_own_finding_with_the_snapshots_and_paths_it_hurts() {
    let s = setup();
    // Where the second snapshot's root tree is stored, asked of the library.
    let repo = s.env.library(&s.env.repo());
    let snap = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .find(|x| x.id.short() == s.second)
        .unwrap();
    let loc = repo
        .locate(
            repo::blob::BlobKind::Tree,
            &repo::id::BlobId::from(snap.tree),
        )
        .unwrap();
    drop(repo);
    let pack = s.env.repo().join(repo::pack::pack_path(&loc.pack));
    flip_byte(&pack, loc.offset + u64::from(loc.length) / 2);
    // Without reading data the pack looks whole (size and trailer): the tree is the finding.
    let out = s.env.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = r["findings"].as_array().unwrap();
    let tree = findings
        .iter()
        .find(|f| f["kind"] == "tree_damaged")
        .unwrap_or_else(|| panic!("no tree_damaged finding: {r}"));
    assert_eq!(tree["snapshots"], serde_json::json!([s.second]), "{tree}");
    assert_eq!(
        tree["paths"],
        serde_json::json!([format!("{}:/", s.second)])
    );
    assert_eq!(tree["fix"], "repo repair");
    assert!(findings.iter().any(|f| f["kind"] == "snapshot_damaged"));
    // Reading the data names the damaged blob instead; the tree is not reported twice.
    let out = s.env.run(&["check", "--read-data", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"blob_damaged"), "{kinds:?}");
    assert!(!kinds.contains(&"tree_damaged"), "{kinds:?}");
    let _ = &s.src;
}

/// `check --read-data-subset`: groups `1/2` and `2/2` read every pack exactly once between
/// them and only the one holding the damaged pack fails; a percentage and a size read what
/// they say; bad values and `--read-data` with a subset are refused.
#[test]
fn a_read_data_subset_reads_its_packs_and_two_groups_cover_them_all() {
    let s = setup();
    let pack = victim_pack(&s);
    flip_byte(&pack, 1000);
    let check = |subset: &str| {
        let o = s
            .env
            .run(&["check", "--read-data-subset", subset, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&o.stderr));
        });
        (o.status.code(), v)
    };
    let finds = |v: &serde_json::Value| {
        v["findings"].as_array().unwrap().iter().any(|f| {
            f["kind"] == "blob_damaged" && f["message"].as_str().unwrap().contains(&short(&pack))
        })
    };
    let (c1, g1) = check("1/2");
    let (c2, g2) = check("2/2");
    let packs = g1["packs"].as_u64().unwrap();
    assert!(packs >= 4, "{g1}");
    assert_eq!(
        g1["packs_read"].as_u64().unwrap() + g2["packs_read"].as_u64().unwrap(),
        packs,
        "the two groups read every pack once: {g1} {g2}"
    );
    // (Which group a pack falls in depends on its random id: with a handful of packs one
    // group may hold them all, so neither group's size is asserted here; "1B" and "50%"
    // below show that a subset reads less.)
    assert_ne!(finds(&g1), finds(&g2), "exactly one group holds the damage");
    assert_eq!(if finds(&g1) { c1 } else { c2 }, Some(1));
    assert_eq!(if finds(&g1) { c2 } else { c1 }, Some(0));

    let (code, all) = check("100%");
    assert_eq!(code, Some(1));
    assert!(finds(&all), "{all}");
    assert_eq!(all["packs_read"].as_u64().unwrap(), packs);
    let (_, one) = check("1B");
    assert_eq!(one["packs_read"], 1, "{one}");
    let (_, half) = check("50%");
    assert_eq!(
        half["packs_read"].as_u64().unwrap(),
        packs.div_ceil(2),
        "{half}"
    );

    for bad in [
        &["--read-data-subset", "0%"][..],
        &["--read-data-subset", "3/2"],
        &["--read-data-subset", "5%", "--read-data"],
    ] {
        let mut args = vec!["check"];
        args.extend_from_slice(bad);
        let o = s.env.run(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("read-data"), "{bad:?}: {err}");
    }
}
