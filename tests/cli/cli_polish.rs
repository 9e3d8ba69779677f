//! The CLI as operators expect it: shell completions and man pages from the parser's own
//! definitions, `backup` for restic users, one duration syntax, and `--json` errors.

use std::path::Path;

use crate::common::Env;

#[test]
fn completions_man_pages_and_the_backup_alias() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "_repo()"),
        ("zsh", "#compdef repo"),
        ("fish", "complete -c repo"),
    ] {
        let out = env.ok(&["completions", shell]);
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(300)]
        );
        assert!(
            out.contains("snapshot") && out.contains("restore"),
            "{shell}"
        );
    }
    assert_eq!(env.run(&["completions", "tcsh"]).status.code(), Some(2));

    let dir = env.path("man");
    env.ok(&["man", dir.to_str().unwrap()]);
    let main = std::fs::read_to_string(dir.join("repo.1")).unwrap();
    assert!(
        main.contains(".TH repo") && main.contains("snapshot"),
        "{main}"
    );
    let restore = std::fs::read_to_string(dir.join("repo-restore.1")).unwrap();
    assert!(restore.contains("\\-\\-target"), "{restore}");

    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    let v = env.json(&["backup", data.to_str().unwrap()]);
    assert!(v["id"].is_string(), "{v}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);
}

#[test]
fn json_errors_and_one_duration_syntax() {
    let env = Env::new();
    // No repository yet: exit 10, and with --json one object on stdout.
    let out = env.run(&["snapshots", "--json"]);
    assert_eq!(out.status.code(), Some(10));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(v["error"]["kind"], "no_repository", "{v}");
    assert_eq!(v["error"]["exit_code"], 10);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("repository"));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    // Without --json, stdout stays empty.
    assert!(env.run(&["snapshots"]).stdout.is_empty());

    env.init();
    // --lock-wait takes the same syntax as --poll.
    env.ok(&["snapshots", "--lock-wait", "500ms"]);
    env.ok(&["snapshots", "--lock-wait", "1m30s"]);
    let out = env.run(&["snapshots", "--lock-wait", "soon"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("500ms") && err.contains("--lock-wait"),
        "{err}"
    );
    // Times: "last week" works, and a time that cannot be read says which forms can.
    env.ok(&["snapshots", "--since", "last week"]);
    let out = env.run(&["snapshots", "--since", "a while back"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("2h ago") && err.contains("RFC 3339"),
        "{err}"
    );
}

/// Every `--flag` an error message suggests exists on the command that printed it.
fn assert_hints_exist(env: &Env, command: &str, message: &str) {
    let help = env.ok(&[command, "--help"]);
    let mut found = 0;
    for word in message.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if word.starts_with("--") && word.len() > 2 {
            found += 1;
            assert!(
                help.contains(word),
                "`repo {command}` suggests {word}, which it does not take:\n{message}"
            );
        }
    }
    assert!(found > 0, "no hint in: {message}");
}

#[test]
fn latest_is_scoped_by_path_and_hints_name_real_flags() {
    let env = Env::new();
    env.init();
    let (a, b) = (env.path("a"), env.path("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("f"), d.display().to_string()).unwrap();
    }
    env.snapshot(&[&a]);
    env.snapshot(&[&b]);
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());

    // `latest PATH` is the newest snapshot holding PATH, and --path says so explicitly.
    let ls = env.ok(&["ls", "latest", a_s]);
    assert!(ls.contains("/a/f"), "{ls}");
    let ls = env.ok(&["ls", "latest", "--path", a_s]);
    assert!(ls.contains("/a/f") && !ls.contains("/b/"), "{ls}");
    assert_eq!(env.ok(&["dump", "latest", &format!("{a_s}/f")]), a_s);
    let t = env.path("t");
    env.ok(&[
        "restore",
        "latest",
        "--path",
        a_s,
        "--target",
        t.to_str().unwrap(),
    ]);
    assert!(t.join(a.strip_prefix("/").unwrap()).join("f").exists());

    // Two sources at one moment: the error's hints are flags restore takes, and work.
    let out = env.run(&["restore", "--at", "now", "--target", t.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("--path"), "{err}");
    assert_hints_exist(&env, "restore", &err);
    let t2 = env.path("t2");
    env.ok(&[
        "restore",
        "--at",
        "now",
        "--path",
        b_s,
        "--target",
        t2.to_str().unwrap(),
    ]);
    assert!(t2.join(b.strip_prefix("/").unwrap()).join("f").exists());

    // A filter nothing matches names the flags ls takes.
    let out = env.run(&["ls", "latest", "--host", "elsewhere"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert_hints_exist(&env, "ls", &err);

    // diff and stats take the same filters: `latest --path A` is A's newest snapshot,
    // though B's is newer.
    let first_a = env.json(&["snapshots", "--path", a_s])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(a.join("g"), "new").unwrap();
    let second_a = env.snapshot(&[&a]);
    let newest_b = env.snapshot(&[&b]);
    let d = env.json(&["diff", &first_a, "latest", "--path", a_s]);
    assert_eq!(d["to"], second_a["id"], "{d}");
    let changed: Vec<&str> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(changed.iter().any(|p| p.ends_with("/a/g")), "{changed:?}");
    let st = env.json(&["stats", "--path", a_s]);
    let per = st["per_snapshot"].as_array().unwrap();
    assert_eq!(per.len(), 1, "{st}");
    assert_eq!(per[0]["id"], second_a["id"], "{st}");
    assert_ne!(per[0]["id"], newest_b["id"]);
}

/// Snapshots of plan `app` (tagged `plan:app`) and one taken by hand: `-P app` narrows
/// `latest`, the lists and the filters to the plan's.
#[test]
fn dash_p_plan_scopes_latest_and_the_lists() {
    let env = Env::new();
    env.init();
    let (a, b) = (env.path("a"), env.path("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("f"), d.display().to_string()).unwrap();
    }
    let p = env.path("home/config/repo/config.toml");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(
        &p,
        format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n\n[plans.app]\nrepository = \"main\"\npaths = [\"{}\"]\n",
            env.repo().display(),
            a.display()
        ),
    )
    .unwrap();
    env.ok(&["run", "app"]);
    env.snapshot(&[&b]);
    let all = env.json(&["snapshots"]);
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let app = env.json(&["-P", "app", "snapshots"]);
    let app = app.as_array().unwrap();
    assert_eq!(app.len(), 1, "{app:?}");
    assert!(app[0]["tags"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("plan:app")));
    // `latest` is the plan's newest, though the hand-made snapshot of b is newer.
    let ls = env.ok(&["-P", "app", "ls", "latest"]);
    assert!(ls.contains("/a/f") && !ls.contains("/b/"), "{ls}");
    let f = format!("{}/f", a.display());
    assert_eq!(
        env.ok(&["-P", "app", "dump", "latest", &f]),
        a.display().to_string()
    );
    let out = env.run(&["-P", "app", "dump", "latest", &format!("{}/f", b.display())]);
    assert!(!out.status.success(), "b is in no snapshot of the plan");
}

/// `snapshot --dry-run`: the counts a real run would report, with excludes applied,
/// against the parent; nothing written, not even the operation log.
#[test]
fn snapshot_dry_run_counts_what_would_be_read_and_writes_nothing() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    for i in 0..5 {
        std::fs::write(
            data.join(format!("sub/f{i}.txt")),
            "x".repeat(1000 * (i + 1)),
        )
        .unwrap();
    }
    std::fs::write(data.join("debug.log"), "y".repeat(50_000)).unwrap();
    std::os::unix::fs::symlink("sub/f0.txt", data.join("link")).unwrap();
    let d = data.to_str().unwrap();
    let history = |env: &Env| env.json(&["history"]).as_array().unwrap().len();
    let before = history(&env);

    let r = env.json(&["snapshot", "--dry-run", d, "--exclude", "*.log"]);
    assert_eq!(r["files_new"], 5, "{r}");
    assert_eq!(r["files_changed"], 0, "{r}");
    assert_eq!(
        r["bytes_to_read"], 15_000,
        "the excluded log is not counted: {r}"
    );
    assert_eq!(r["others"], 1, "{r}");
    assert!(r["parent"].is_null(), "{r}");
    assert!(
        env.json(&["snapshots"]).as_array().unwrap().is_empty(),
        "no snapshot"
    );
    assert_eq!(history(&env), before, "no operation-log record");
    let human = env.ok(&["snapshot", "-n", d]);
    assert!(
        human.contains("6 new") && human.contains("nothing written"),
        "{human}"
    );

    // Against a parent: one file changed, one new; the rest unchanged and not counted.
    let snap = env.snapshot(&[&data]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(data.join("sub/f1.txt"), "changed").unwrap();
    std::fs::write(data.join("sub/new.txt"), "new!").unwrap();
    let r = env.json(&["snapshot", "--dry-run", d]);
    assert_eq!(r["parent"], snap["id"], "{r}");
    assert_eq!(
        (r["files_new"].as_u64(), r["files_changed"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert_eq!(r["files_unchanged"], 5, "{r}");
    assert_eq!(r["bytes_to_read"], 11, "{r}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);
}

#[test]
fn quiet_verbose_log_file_and_progress_for_logs() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    crate::common::write_big_file(&data.join("big"), 8 << 20, 1);
    let d = data.to_str().unwrap();

    // -q: nothing at all on success.
    let out = env.run(&["-q", "snapshot", d]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    // Readers still print what they were asked for.
    assert!(!env.run(&["-q", "snapshots"]).stdout.is_empty());

    // -v: our events at info on stderr; --log-file: there instead, with timestamps.
    let out = env.run(&["-v", "snapshots"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("info: opened repository"), "{err}");
    let log = env.path("repo.log");
    let out = env.run(&["-vv", "--log-file", log.to_str().unwrap(), "snapshot", d]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("opened repository") && text.contains("DEBUG"),
        "{text}"
    );
    assert!(!text.contains("correct horse"), "no password in the log");
    let out = env.run(&["--log-level", "loud", "snapshots"]);
    assert_eq!(out.status.code(), Some(1));

    // Not a terminal: a progress line per interval when asked, and JSON events.
    std::fs::write(data.join("more"), crate::common::random_bytes(4 << 20, 9)).unwrap();
    let out = env.run(&["snapshot", d, "--progress-interval", "1ms"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("progress: ") && l.ends_with(", done")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("progress: backing up ") && l.contains(" files, ")),
        "{err}"
    );
    // check counts packs, with their bytes.
    let out = env.run(&["check", "--progress-interval", "1ms"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("progress: checking ") && l.contains(" packs, ")),
        "{err}"
    );
    std::fs::write(data.join("more"), crate::common::random_bytes(4 << 20, 10)).unwrap();
    let out = env.run(&["snapshot", d, "--json-progress"]);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["done"] == true && e["phase"].is_string() && e["unit"] == "files"),
        "{events:?}"
    );
    let out = env.run(&["snapshots", "--progress-interval", "often"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_unreachable_mongodb_says_where_and_how_long() {
    let env = Env::new();
    env.init();
    let out = env.run(&[
        "snapshot",
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("127.0.0.1:1") && err.contains("0.3 s"),
        "{err}"
    );
    assert!(
        err.contains("refused") && !err.contains("Topology"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_relative_repository_path_means_the_directory_it_named_when_given() {
    let env = Env::new();
    let work = env.path("work");
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "relative").unwrap();
    let run = |cwd: &Path, args: &[&str]| {
        let mut c = env.cmd(args);
        c.current_dir(cwd).env_remove("REPO_REPOSITORY");
        let out = c.output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // A path with no existing parent component, as `repo init -r backups` gives.
    let said = run(&work, &["init", "-r", "backups"]);
    assert!(work.join("backups/config").is_file());
    // Messages name the absolute directory, not "backups".
    let repo = work.join("backups");
    assert!(said.contains(repo.to_str().unwrap()), "{said}");
    run(&work, &["snapshot", "-r", "backups", "data"]);
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let listed = run(&elsewhere, &["ls", "-r", repo.to_str().unwrap(), "latest"]);
    assert!(listed.contains("/data/f"), "{listed}");
}
