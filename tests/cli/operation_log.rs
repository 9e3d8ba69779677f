//! The operation log: every command that changes a repository (or restores from it)
//! leaves one encrypted record, readable from any host with `history` and `status`;
//! readers leave none; credentials never reach a record; `forget --keep-log` trims;
//! `check` reports a damaged record without failing.

use std::fs;

use crate::common::Env;

fn history(env: &Env, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["history"];
    a.extend_from_slice(extra);
    env.json(&a).as_array().unwrap().clone()
}

#[test]
fn changing_commands_leave_records_that_any_host_reads_and_readers_leave_none() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), "alpha").unwrap();
    let s = src.to_str().unwrap();
    let first = env.snapshot(&[&src]);
    fs::write(src.join("b"), "beta").unwrap();
    env.snapshot(&[&src]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    env.ok(&["check"]);
    // A failing command that reached the repository is recorded with its error.
    let bad = env.run(&["restore", "deadbeef", "--target", out.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    // Credentials in a URI never reach the record, not even in the error.
    let secret = "uri-pw-5c0ffee";
    let uri = format!("mongodb://admin:{secret}@127.0.0.1:1/?serverSelectionTimeoutMS=300");
    let mongo = env.run(&["snapshot", &uri, "--db", "x"]);
    assert!(!mongo.status.success());
    env.ok(&["forget", first["id"].as_str().unwrap()]);
    env.ok(&["prune", "--grace", "0"]);
    let mut c = env.cmd(&["key", "add"]);
    c.env("REPO_NEW_PASSWORD", "second password");
    assert!(c.status().unwrap().success());
    // Every other verb that changes the repository, or acts on it for a user.
    let other = env.path("other");
    for args in [&["init"][..], &["snapshot", s]] {
        let mut c = env.cmd(args);
        c.env("REPO_REPOSITORY", &other);
        assert!(c.status().unwrap().success(), "{args:?}");
    }
    let mut c = env.cmd(&["copy", "--from", other.to_str().unwrap()]);
    c.env("REPO_FROM_PASSWORD", "correct horse battery staple");
    assert!(c.status().unwrap().success());
    env.ok(&["repair", "index"]);
    env.ok(&["unlock"]);
    env.ok(&["settings", "--quota", "10GiB"]);
    env.ok(&["index", "rebuild", "--from-packs"]);

    let before = history(&env, &[]).len();
    for args in [
        &["snapshots"][..],
        &["ls", "latest"],
        &["find", "a"],
        &["stats"],
        &["key", "list"],
        &["history"],
        &["prune", "--dry-run"],
        &["forget", "--keep-last", "1", "--dry-run"],
        &["settings"],
        &["index", "rebuild"],
        &["key", "list"],
        &["repair", "index", "--dry-run"],
    ] {
        env.ok(args);
    }
    let dry = env.path("dry");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        dry.to_str().unwrap(),
        "--dry-run",
    ]);
    // Read as another host would: its own cache, nothing shared but the repository.
    let mut c = env.cmd(&["history", "--json"]);
    c.env("XDG_CACHE_HOME", env.path("other-cache"))
        .env("XDG_STATE_HOME", env.path("other-state"));
    let all: serde_json::Value = serde_json::from_slice(&c.output().unwrap().stdout).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), before, "readers and dry runs leave no record");
    let got: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("snapshot", "ok"),
            ("snapshot", "ok"),
            ("restore", "ok"),
            ("check", "ok"),
            ("restore", "failed"),
            ("snapshot", "failed"),
            ("forget", "ok"),
            ("prune", "ok"),
            ("key", "ok"),
            ("copy", "ok"),
            ("repair", "ok"),
            ("unlock", "ok"),
            ("settings", "ok"),
            ("index", "ok"),
        ]
    );
    let ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids sort by time: {ids:?}"
    );
    assert!(
        all[4]["error"].as_str().unwrap().contains("deadbeef"),
        "{}",
        all[4]
    );
    assert_eq!(all[0]["report"]["id"], first["id"], "the snapshot's report");
    assert_eq!(all[0]["command"][1], "snapshot");
    assert_eq!(
        all[5]["command"][2],
        uri.replace(&format!("admin:{secret}"), "***")
    );
    let text = serde_json::to_string(all).unwrap();
    assert!(!text.contains(secret), "a credential reached the log");

    // status by unique prefix; filters.
    let one = env.json(&["status", &ids[2][..16]]);
    assert_eq!(one["kind"], "restore");
    assert!(env.ok(&["status", &ids[2][..16]]).contains("result    ok"));
    assert_eq!(history(&env, &["--failed"]).len(), 2);
    assert_eq!(history(&env, &["--kind", "restore"]).len(), 2);
    assert_eq!(history(&env, &["--since", "1h"]).len(), before);
    let o = env.run(&["status", "0"]);
    assert_eq!(o.status.code(), Some(1), "an ambiguous prefix is refused");

    // A damaged record is a warning for check, not an error; history skips it.
    let victim = env.repo().join("log").join(ids[3]);
    let mut bytes = fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    fs::write(&victim, bytes).unwrap();
    let check = env.json(&["check"]);
    let f = &check["findings"][0];
    assert_eq!(f["kind"], "log_record_damaged", "{check}");
    assert_eq!(f["severity"], "warning");
    assert_eq!(
        history(&env, &[]).len(),
        before,
        "the check's own record replaces it"
    );

    // Trimming: everything that finished more than a second ago goes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let dry = env.json(&["forget", "--keep-log", "1s", "--dry-run"]);
    assert_eq!(
        dry["log_records_removed"],
        before + 1,
        "the damaged one too, by its id"
    );
    let done = env.json(&["forget", "--keep-log", "1s"]);
    assert_eq!(done["log_records_removed"], before + 1);
    let left = history(&env, &[]);
    assert_eq!(
        left.len(),
        1,
        "the trim's own record (a dry run leaves none)"
    );
    assert_eq!(left[0]["kind"], "forget");
    assert_eq!(
        env.json(&["snapshots"]).as_array().unwrap().len(),
        2,
        "no snapshot went (the one kept and the copied one)"
    );
    let _ = s;
}
