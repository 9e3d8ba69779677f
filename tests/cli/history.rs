//! Snapshot history: filters on `snapshots` and point-in-time restore with `--at`.

use std::fs;

use crate::common::Env;

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

fn time_of(s: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    s["time"].as_str().expect("time").parse().expect("rfc3339")
}

#[test]
fn restore_at_picks_the_newest_snapshot_at_or_before() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    env.init();
    let mut snaps = Vec::new();
    for v in 1..=3 {
        fs::write(src.join("state.txt"), format!("version {v}\n")).unwrap();
        snaps.push(env.snapshot(&[&src]));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let t: Vec<_> = snaps.iter().map(time_of).collect();
    let restore_at = |at: String| {
        let out = env.path(&format!("out-{}", at.replace([':', '.', '+'], "_")));
        let o = env.run(&[
            "restore",
            "--at",
            &at,
            "--target",
            out.to_str().unwrap(),
            src.to_str().unwrap(),
        ]);
        let restored = out.join(src.strip_prefix("/").unwrap()).join("state.txt");
        (o, fs::read_to_string(restored).ok())
    };
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    // Exactly equal to the second snapshot's time: that one.
    let (o, got) = restore_at(fmt(t[1]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(got.as_deref(), Some("version 2\n"));
    let short = &snaps[1]["id"].as_str().unwrap()[..8];
    assert!(String::from_utf8_lossy(&o.stderr).contains(short));
    // Between the second and the third: still the second.
    let (_, got) = restore_at(fmt(t[1] + (t[2] - t[1]) / 2));
    assert_eq!(got.as_deref(), Some("version 2\n"));
    // After everything: the newest.
    let (_, got) = restore_at("now".into());
    assert_eq!(got.as_deref(), Some("version 3\n"));
    // Before the first: a clear error, nothing written.
    let (o, got) = restore_at(fmt(t[0] - chrono::Duration::seconds(1)));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no snapshot was taken at or before"));
    assert!(got.is_none());
    // Nonsense time: a clear error.
    let (o, _) = restore_at("next tuesday-ish".into());
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
}

#[test]
fn restore_at_refuses_to_guess_between_sources() {
    let env = Env::new();
    let (a, b) = (env.path("a"), env.path("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(a.join("f"), "a").unwrap();
    fs::write(b.join("f"), "b").unwrap();
    env.init();
    env.snapshot(&[&a]);
    env.snapshot(&[&b]);
    let out = env.path("out");
    let o = env.run(&["restore", "--at", "now", "--target", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("several sources"), "{err}");
    assert!(!out.exists());
    // A path picks one.
    env.ok(&[
        "restore",
        "--at",
        "now",
        "--target",
        out.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let got = out.join(b.strip_prefix("/").unwrap()).join("f");
    assert_eq!(fs::read_to_string(got).unwrap(), "b");
}

#[test]
fn snapshots_filters() {
    let env = Env::new();
    let (a, b) = (env.path("a"), env.path("b"));
    fs::create_dir_all(a.join("deep")).unwrap();
    fs::create_dir_all(&b).unwrap();
    env.init();
    let s1 = env.json(&[
        "snapshot",
        a.to_str().unwrap(),
        "--tag",
        "daily",
        "--host",
        "h1",
    ]);
    let s2 = env.json(&["snapshot", b.to_str().unwrap(), "--host", "h2"]);
    let s3 = env.json(&[
        "snapshot",
        a.to_str().unwrap(),
        "--tag",
        "daily",
        "--host",
        "h1",
    ]);
    let id = |s: &serde_json::Value| s["id"].as_str().unwrap().to_string();
    assert_eq!(
        ids(&env.json(&["snapshots"])),
        vec![id(&s1), id(&s2), id(&s3)]
    );
    assert_eq!(
        ids(&env.json(&["snapshots", "--host", "h2"])),
        vec![id(&s2)]
    );
    assert_eq!(
        ids(&env.json(&["snapshots", "--tag", "daily"])),
        vec![id(&s1), id(&s3)]
    );
    let deep = a.join("deep");
    assert_eq!(
        ids(&env.json(&["snapshots", "--path", deep.to_str().unwrap()])),
        vec![id(&s1), id(&s3)]
    );
    assert_eq!(
        ids(&env.json(&["snapshots", "--latest", "1"])),
        vec![id(&s2), id(&s3)]
    );
    assert_eq!(ids(&env.json(&["snapshots", "--since", "1h"])).len(), 3);
    assert!(ids(&env.json(&["snapshots", "--until", "1h ago"])).is_empty());
    assert!(ids(&env.json(&["snapshots", "--source", "mongodb"])).is_empty());
    let table = env.ok(&["snapshots"]);
    assert!(
        table.contains("h1 files:") && table.contains("h2 files:"),
        "{table}"
    );
}

#[test]
fn diff_and_find_on_a_known_history() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("docs/a.md"), "alpha\n").unwrap();
    fs::write(src.join("docs/b.md"), "beta\n").unwrap();
    fs::write(src.join("keep.txt"), "same\n").unwrap();
    fs::write(src.join("mode.sh"), "echo\n").unwrap();
    env.init();
    let s1 = env.snapshot(&[&src]);
    fs::write(src.join("docs/a.md"), "alpha, longer now\n").unwrap();
    fs::remove_file(src.join("docs/b.md")).unwrap();
    fs::create_dir_all(src.join("new")).unwrap();
    fs::write(src.join("new/c.md"), "gamma\n").unwrap();
    fs::set_permissions(src.join("mode.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let s2 = env.snapshot(&[&src]);
    let (a, b) = (s1["id"].as_str().unwrap(), s2["id"].as_str().unwrap());
    let d = env.json(&["diff", a, b]);
    let p = src.to_str().unwrap();
    let mut got: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want = vec![
        (format!("{p}/docs/a.md"), "modified".to_string()),
        (format!("{p}/docs/b.md"), "removed".to_string()),
        (format!("{p}/mode.sh"), "metadata".to_string()),
        (format!("{p}/new"), "added".to_string()),
        (format!("{p}/new/c.md"), "added".to_string()),
    ];
    assert_eq!(got, want, "{d}");
    assert_eq!(d["totals"]["bytes_removed"], 5);
    assert_eq!(env.json(&["diff", a, a])["changes"], serde_json::json!([]));

    let found = env.json(&["find", "*.md"]);
    let hits: Vec<(String, String)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["snapshot"].as_str().unwrap().to_string(),
                m["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(hits.len(), 4, "{found}");
    assert!(hits.contains(&(a[..8].to_string(), format!("{p}/docs/b.md"))));
    assert!(!hits
        .iter()
        .any(|(s, path)| s == &b[..8] && path.ends_with("b.md")));
    let c = env.json(&["find", &format!("{p}/new/*")]);
    assert_eq!(c.as_array().unwrap().len(), 1);
    assert_eq!(c[0]["size"], 6);
    let bad = env.run(&["find", "a["]);
    assert_eq!(bad.status.code(), Some(1));
}
