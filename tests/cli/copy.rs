//! `repo copy` between two local repositories with different passwords.

use crate::common::{assert_same_tree, random_bytes, write_big_file, Env};

#[test]
fn copy_moves_only_missing_data_and_skips_copied_snapshots() {
    let env = Env::new();
    let src_repo = env.path("src-repo");
    let src_repo = src_repo.to_str().unwrap();
    let data = env.path("data");
    std::fs::create_dir_all(data.join("d")).unwrap();
    write_big_file(&data.join("big.bin"), 6 << 20, 3);
    for i in 0..20u64 {
        std::fs::write(
            data.join("d").join(format!("f{i}")),
            random_bytes(3000, 2 * i + 1),
        )
        .unwrap();
    }
    let d = data.to_str().unwrap();
    let src = |args: &[&str]| {
        let mut a = vec!["--repo", src_repo];
        a.extend_from_slice(args);
        let mut c = env.cmd(&a);
        c.env("REPO_PASSWORD", "source password");
        c
    };
    let ok = |mut c: std::process::Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(src(&["init"]));
    ok(src(&["snapshot", d]));
    std::fs::write(data.join("d/f3"), b"changed").unwrap();
    ok(src(&["snapshot", d]));

    env.init();
    let mut c = env.cmd(&["copy", "--from", src_repo, "--json"]);
    c.env("REPO_FROM_PASSWORD", "source password");
    let first: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
    assert_eq!(first["copied"].as_array().unwrap().len(), 2, "{first}");
    // Both snapshots share almost everything: stored once (~6 MB random + small files).
    assert!(first["bytes_added"].as_u64().unwrap() < 8 << 20, "{first}");

    let mut c = env.cmd(&["copy", "--from", src_repo, "--json"]);
    c.env("REPO_FROM_PASSWORD", "source password");
    let again: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
    assert_eq!(again["copied"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["skipped"].as_array().unwrap().len(), 2, "{again}");
    assert_eq!(again["blobs_added"], 0);

    // A new snapshot with one small change: only its new chunks are read from the source
    // (the destination's cache remembers where the others went).
    assert!(first["chunks_read"].as_u64().unwrap() > 20, "{first}");
    // Read pack by pack: the small files' chunks, side by side in packs, share requests.
    assert!(
        first["source_requests"].as_u64().unwrap() * 4 < first["chunks_read"].as_u64().unwrap(),
        "{first}"
    );
    std::fs::write(data.join("d/f7"), b"edited").unwrap();
    ok(src(&["snapshot", d]));
    let mut c = env.cmd(&["copy", "--from", src_repo, "--json"]);
    c.env("REPO_FROM_PASSWORD", "source password");
    let third: serde_json::Value = serde_json::from_str(&ok(c)).unwrap();
    assert_eq!(third["copied"].as_array().unwrap().len(), 1, "{third}");
    assert!(third["chunks_read"].as_u64().unwrap() <= 2, "{third}");

    env.ok(&["check", "--read-data"]);
    let target = env.path("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&data, &target.join(data.strip_prefix("/").unwrap()));

    // A wrong source password is a clear error.
    let mut c = env.cmd(&["copy", "--from", src_repo]);
    c.env("REPO_FROM_PASSWORD", "wrong");
    let out = c.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
}
