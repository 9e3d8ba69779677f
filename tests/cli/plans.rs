//! Backup plans: the config file's errors, `-P`, `repo run` end to end with hooks,
//! copies, retention and checks, notifications to a real local HTTP listener and a
//! command, and no secret anywhere afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::common::{assert_same_tree, mongo_server, services_required, unique_db, Env};

/// What the listener received: headers (lower-cased names) and body, per request.
pub(crate) type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

/// A local HTTP server answering every request with `status`; returns its URL base.
pub(crate) fn listener(status: u16) -> (String, Received) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            headers.push(("request".to_string(), line.trim().to_string()));
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            g.lock().unwrap().push((headers, body));
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn write_config(env: &Env, text: &str) -> std::path::PathBuf {
    let p = env.path("home/config/repo/config.toml");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn config_errors_give_file_line_and_the_closest_key() {
    let env = Env::new();
    let typo = "[repositories.main]\nlocation = \"/tmp/x\"\npasword-file = \"/etc/p\"\n";
    let path = write_config(&env, typo);
    let o = env.run(&["config", "check"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("{}:3:", path.display())), "{e}");
    assert!(e.contains("did you mean `password-file`"), "{e}");

    // Semantic problems are all reported at once, each at its line.
    let text = r#"[repositories.main]
location = "/srv/backups/main"
password-file = "/etc/repo/main.pass"

[plans.app]
repository = "mian"
paths = ["relative/dir"]
schedule = "0 25 * * *"
mongodb = { uri-env = "A", uri-file = "/b" }
retention = { keep-daily = 7 }
notify = ["ops"]

[notify.ops]
webhook = "ftp://example.net/x"
on = ["failur"]
"#;
    write_config(&env, text);
    let o = env.run(&["config", "check"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    for want in [
        ":6:14: no repositories \"mian\" (did you mean \"main\"?)",
        ":7:10: \"relative/dir\": paths must be absolute",
        ":8:12: schedule \"0 25 * * *\"",
        ":9:11: mongodb: give exactly one of uri-env or uri-file",
        ":14:11: \"ftp://example.net/x\" is not an http:// or https:// URL",
        ":15:7: unknown event \"failur\" (did you mean \"failure\"?)",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let o = env.run(&["run", "nope"]);
    assert_eq!(o.status.code(), Some(1));

    // A missing --config file is an error, not an empty config.
    let o = env.run(&["--config", "/nonexistent/repo.toml", "plans"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no config file at /nonexistent/repo.toml"));
}

/// The plan's files: a tree with a file the plan excludes.
fn source_tree(env: &Env) -> std::path::PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/a.txt"), "alpha").unwrap();
    std::fs::write(src.join("docs/b.tmp"), "scratch").unwrap();
    std::fs::write(src.join("c.bin"), crate::common::random_bytes(300_000, 7)).unwrap();
    src
}

#[test]
fn a_plan_runs_end_to_end_with_hooks_copies_retention_and_restores() {
    let env = Env::new();
    let secret = "pw-from-a-command-7f3a9c";
    let main = env.path("main");
    let offsite = env.path("offsite");
    let pwfile = env.path("main.pass");
    std::fs::write(&pwfile, format!("{secret}\n")).unwrap();
    for (dir, pw) in [(&main, secret), (&offsite, "offsite-pw-91b2")] {
        let mut c = env.cmd(&["init"]);
        c.env("REPO_REPOSITORY", dir).env("REPO_PASSWORD", pw);
        assert!(c.status().unwrap().success());
    }
    let src = source_tree(&env);
    let hooklog = env.path("hooks.log");
    let hook = |name: &str| {
        format!(
            "echo \"{name} $REPO_PLAN $REPO_STATUS $REPO_SNAPSHOT_ID $REPO_OPERATION_ID $REPO_REPORT\" >> {}",
            hooklog.display()
        )
    };
    let mongo = mongo_server();
    let db = unique_db("plan");
    // The plan connects with credentials, which must never show up anywhere.
    let mongo_pw = "mongo-pw-e41c7d";
    let mongo_uri = mongo.as_ref().map(|(uri, client)| {
        use mongodb::bson::doc;
        client
            .database("admin")
            .run_command(doc! {"createUser": &db, "pwd": mongo_pw, "roles": ["root"]})
            .run()
            .expect("createUser");
        uri.replacen("mongodb://", &format!("mongodb://{db}:{mongo_pw}@"), 1)
    });
    let mongo_line = match &mongo {
        Some((_, client)) => {
            use mongodb::bson::doc;
            let c = client.database(&db).collection("orders");
            c.insert_many((0..50).map(|i| doc! {"_id": i, "v": format!("order {i}")}))
                .run()
                .unwrap();
            format!("mongodb = {{ uri-env = \"APP_MONGODB_URI\", databases = [\"{db}\"] }}\n")
        }
        None => String::new(),
    };
    let config = format!(
        r#"[repositories.main]
location = "{main}"
password-file = "{pwfile}"

[repositories.offsite]
location = "{offsite}"
password-command = "printf offsite-pw-91b2"

[plans.app]
repository = "main"
paths = ["{src}"]
exclude = ["*.tmp"]
{mongo_line}tags = ["app"]
schedule = "0 * * * *"
retention = {{ keep-last = 2 }}
copy-to = ["offsite"]
check = {{ read-data = true }}
hooks = {{ before = '{before}', after = '{after}', on-success = '{ok}', on-failure = '{bad}' }}
"#,
        main = main.display(),
        offsite = offsite.display(),
        pwfile = pwfile.display(),
        src = src.display(),
        before = hook("before"),
        after = hook("after"),
        ok = hook("on-success"),
        bad = hook("on-failure"),
    );
    write_config(&env, &config);
    let check = env.ok(&["config", "check"]);
    assert!(check.contains("plan app"), "{check}");
    assert!(!check.contains(secret));

    let run = |env: &Env| {
        let mut c = env.cmd(&["run", "app", "--json"]);
        c.env_remove("REPO_PASSWORD").env_remove("REPO_REPOSITORY");
        if let Some(uri) = &mongo_uri {
            c.env("APP_MONGODB_URI", uri);
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{}\n{}",
            stderr(&o),
            String::from_utf8_lossy(&o.stdout)
        );
        for s in [secret, "offsite-pw-91b2", mongo_pw] {
            let all = [&o.stdout[..], &o.stderr[..]].concat();
            assert!(
                !all.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} printed"
            );
        }
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (report, o)
    };
    let mut last = serde_json::Value::Null;
    for _ in 0..3 {
        last = run(&env).0;
    }
    assert_eq!(last["status"], "ok", "{last}");
    let steps: Vec<&str> = last["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["snapshot", "copy:offsite", "forget", "check"]);
    let snap = last["snapshot"].as_str().unwrap().to_string();
    let op = last["operation"].as_str().unwrap().to_string();
    assert_eq!(op.len(), 26, "a ULID: {op}");

    // Hooks: in order, with the run in their environment, the report readable.
    let log = std::fs::read_to_string(&hooklog).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 9, "{log}");
    let order: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(order[6..], ["before", "on-success", "after"]);
    let fields: Vec<&str> = lines[7].split(' ').collect();
    assert_eq!(
        fields[1..5],
        ["app", "ok", snap.as_str(), op.as_str()],
        "{}",
        lines[7]
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fields[5]).unwrap()).unwrap();
    assert_eq!(report["operation"], op.as_str());

    // -P: the plan's repository and password, no --repo or password given.
    let mut c = env.cmd(&["-P", "app", "snapshots", "--json"]);
    c.env_remove("REPO_PASSWORD").env_remove("REPO_REPOSITORY");
    let snaps: serde_json::Value = serde_json::from_slice(&c.output().unwrap().stdout).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2, "retention keeps the last 2");
    assert!(snaps
        .iter()
        .all(|s| s["tags"] == serde_json::json!(["plan:app", "app"])));
    let out = env.path("restored");
    let mut c = env.cmd(&[
        "-P",
        "app",
        "restore",
        &snap,
        "--target",
        out.to_str().unwrap(),
    ]);
    c.env_remove("REPO_PASSWORD").env_remove("REPO_REPOSITORY");
    assert!(c.status().unwrap().success());
    // The excluded file is the only difference (its directory keeps its time).
    let restored = out.join(src.strip_prefix("/").unwrap());
    assert!(!restored.join("docs/b.tmp").exists());
    let docs = std::fs::metadata(src.join("docs")).unwrap();
    std::fs::remove_file(src.join("docs/b.tmp")).unwrap();
    let mtime = filetime::FileTime::from_last_modification_time(&docs);
    filetime::set_file_mtime(src.join("docs"), mtime).unwrap();
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));

    // The copy landed in the offsite repository.
    let mut c = env.cmd(&["snapshots", "--json"]);
    c.env("REPO_REPOSITORY", &offsite)
        .env("REPO_PASSWORD", "offsite-pw-91b2");
    let copied: serde_json::Value = serde_json::from_slice(&c.output().unwrap().stdout).unwrap();
    assert_eq!(
        copied.as_array().unwrap().len(),
        3,
        "every run's snapshot is copied"
    );

    if let Some((uri, client)) = &mongo {
        let mut c = env.cmd(&[
            "-P",
            "app",
            "restore",
            &snap,
            "--mongodb-uri",
            uri,
            "--json",
            "--ns-rename",
            &format!("{db}.*:{db}_r.*"),
        ]);
        c.env_remove("REPO_PASSWORD").env_remove("REPO_REPOSITORY");
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let n = client
            .database(&format!("{db}_r"))
            .collection::<mongodb::bson::Document>("orders")
            .count_documents(mongodb::bson::doc! {})
            .run()
            .unwrap();
        assert_eq!(n, 50);
    } else {
        assert!(!services_required());
    }

    // `scan -P`: every source of the plan against its latest snapshot.
    let scan = |env: &Env| {
        let mut c = env.cmd(&["-P", "app", "scan", "--json"]);
        c.env_remove("REPO_PASSWORD").env_remove("REPO_REPOSITORY");
        if let Some(uri) = &mongo_uri {
            c.env("APP_MONGODB_URI", uri);
        }
        let o = c.output().unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
        (o.status.code(), v)
    };
    let (code, v) = scan(&env);
    assert_eq!(code, Some(0), "{v}");
    let sources = 1 + usize::from(mongo.is_some());
    assert_eq!(v.as_array().unwrap().len(), sources, "{v}");
    std::fs::remove_file(src.join("c.bin")).unwrap();
    let (code, v) = scan(&env);
    assert_eq!(code, Some(4), "a lost file is reported: {v}");

    // `plans` shows the last run on this host and the next one.
    let plans = env.ok(&["plans"]);
    assert!(plans.contains(&format!("ok (repo status {op})")), "{plans}");
    assert!(plans.contains("schedule    0 * * * * (next: "), "{plans}");

    // The decrypted operation log holds the three runs (their reports included), and no
    // secret.
    let mut c = env.cmd(&["-P", "app", "history", "--json"]);
    c.env_remove("REPO_PASSWORD").env_remove("REPO_REPOSITORY");
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let records: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = records.as_array().unwrap();
    assert_eq!(
        runs.iter().filter(|r| r["kind"] == "run").count(),
        3,
        "{records}"
    );
    assert!(runs.iter().all(|r| r["plan"] == "app"));
    for s in [secret, "offsite-pw-91b2", mongo_pw] {
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains(s),
            "{s} in the log"
        );
    }
    no_secret_anywhere(&env, &[secret, "offsite-pw-91b2", mongo_pw]);
}

/// Nothing under HOME but the config file itself (reports, plan state, run reports,
/// caches) holds any of `secrets`.
fn no_secret_anywhere(env: &Env, secrets: &[&str]) {
    let mut stack = vec![env.path("home")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if e.file_type().unwrap().is_file() && !p.ends_with("repo/config.toml") {
                let bytes = std::fs::read(&p).unwrap();
                for s in secrets {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                        "{s:?} found in {}",
                        p.display()
                    );
                }
            }
        }
    }
}

#[test]
fn a_failing_before_hook_skips_the_run_and_notifies_then_recovery_is_announced() {
    let env = Env::new();
    let main = env.repo();
    env.init();
    let src = source_tree(&env);
    let (url, got) = listener(200);
    let (hc_url, pings) = listener(200);
    let flag = env.path("frozen-ok");
    let events = env.path("events.log");
    let token = "T0KEN-in-the-hook-url";
    let config = format!(
        r#"[repositories.main]
location = "{main}"
password-env = "MAIN_PW"

[plans.app]
repository = "main"
paths = ["{src}"]
hooks = {{ before = "test -e {flag}" }}
notify = ["ops", "log", "hc"]

[notify.ops]
webhook = "{url}/hooks/{token}"
webhook-secret-env = "HOOK_KEY"
on = ["failure", "recovered"]
template = "backup {{plan}} on {{host}}: {{status}} ({{error}}); {{status_command}}"

[notify.hc]
healthchecks = "{hc_url}/ping/abc"

[notify.log]
command = 'echo "$REPO_EVENT $REPO_PLAN $REPO_STATUS" >> {events}; cat > /dev/null'
on = ["failure", "success", "recovered"]
"#,
        main = main.display(),
        src = src.display(),
        flag = flag.display(),
        events = events.display(),
    );
    write_config(&env, &config);
    let run = || {
        let mut c = env.cmd(&["run", "app", "--json"]);
        c.env_remove("REPO_PASSWORD")
            .env("MAIN_PW", "correct horse battery staple")
            .env("HOOK_KEY", "hmac-k3y-5a1e90");
        let o = c.output().unwrap();
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), r)
    };
    let (code, r) = run();
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "skipped");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("before hook exited with 1"),
        "{r}"
    );
    assert_eq!(r["snapshot"], serde_json::Value::Null);
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 0);
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1, "one webhook for the failure");
        let (headers, body) = &got[0];
        let h = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            h("request").unwrap(),
            format!("POST /hooks/{token} HTTP/1.1")
        );
        let sig = h("x-repo-signature").expect("signed");
        assert_eq!(
            sig,
            format!(
                "sha256={}",
                repo::plan::notify::sign("hmac-k3y-5a1e90", body)
            )
        );
        let n: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(n["event"], "failure");
        assert_eq!(n["plan"], "app");
        assert!(n["error"].as_str().unwrap().contains("before hook"), "{n}");
        let op = r["operation"].as_str().unwrap();
        let host = n["host"].as_str().unwrap();
        assert_eq!(
            n["message"].as_str().unwrap(),
            format!(
                "backup app on {host}: skipped ({}); repo status {op}",
                r["error"].as_str().unwrap()
            ),
            "the target's template"
        );
    }
    let shown = serde_json::to_string(&r).unwrap();
    assert!(
        !shown.contains(token),
        "the webhook URL's token is never reported"
    );

    std::fs::write(&flag, "").unwrap();
    let (code, r) = run();
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["status"], "ok");
    let got = got.lock().unwrap();
    assert_eq!(
        got.len(),
        2,
        "the recovery is announced; plain success is not (not in `on`)"
    );
    let n: serde_json::Value = serde_json::from_slice(&got[1].1).unwrap();
    assert_eq!(n["event"], "recovered");
    let log = std::fs::read_to_string(&events).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["failure app skipped", "success app ok", "recovered app ok"]
    );
    drop(got);
    // Healthchecks: each run pings start, then success or fail — once per run.
    let paths: Vec<String> = pings
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h[0].1.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "POST /ping/abc/start HTTP/1.1",
            "POST /ping/abc/fail HTTP/1.1",
            "POST /ping/abc/start HTTP/1.1",
            "POST /ping/abc HTTP/1.1",
        ]
    );

    // The repository's operation log: both runs (the skipped one, which never opened
    // the repository, waited on this host), the failed one on its own, each one by id.
    let all = env.json(&["history", "--plan", "app"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let failed = env.json(&["history", "--failed", "--since", "1h"]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["result"], "skipped");
    assert_eq!(failed[0]["kind"], "run");
    let id = all[1]["id"].as_str().unwrap();
    let one = env.json(&["status", &id[..20]]);
    assert_eq!(one["id"], id);
    assert_eq!(one["plan"], "app");
    assert_eq!(one["report"]["steps"][0]["name"], "snapshot");
    let o = env.run(&["status", "ZZZZ"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no operation ZZZZ"), "{}", stderr(&o));
    no_secret_anywhere(
        &env,
        &["correct horse battery staple", token, "hmac-k3y-5a1e90"],
    );
}

#[test]
fn a_failed_run_is_emailed_through_a_real_smtp_server() {
    let (mut sink, port) = crate::common::smtp_sink();
    let env = Env::new();
    env.init();
    let src = source_tree(&env);
    let config = format!(
        r#"[repositories.main]
location = "{repo}"
password-env = "REPO_PASSWORD"

[plans.app]
repository = "main"
paths = ["{src}"]
hooks = {{ before = "exit 9" }}
notify = ["mail"]

[notify.mail]
email = {{ to = ["ops@example.net", "Backup Team <team@example.net>"], from = "repo@example.net", server = "127.0.0.1", port = {port}, security = "none" }}
"#,
        repo = env.repo().display(),
        src = src.display(),
    );
    write_config(&env, &config);
    let o = env.run(&["run", "app", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sent = &r["notifications"][0];
    assert_eq!(
        (sent["via"].as_str(), sent["ok"].as_bool()),
        (Some("email"), Some(true)),
        "{r}"
    );
    let _ = sink.kill();
    let out = sink.wait_with_output().unwrap();
    let mail = String::from_utf8_lossy(&out.stdout);
    assert!(
        mail.contains("Subject: [repo] app failure: skipped"),
        "{mail}"
    );
    assert!(mail.contains("before hook exited with 9"), "{mail}");
    let op = r["operation"].as_str().unwrap();
    assert!(mail.contains(&format!("repo status {op}")), "{mail}");
    assert!(mail.contains("team@example.net"), "{mail}");

    // A template may only name known placeholders.
    let bad = config.replace(
        "security = \"none\" }",
        "security = \"none\" }\ntemplate = \"{plan} {eror}\"",
    );
    write_config(&env, &bad);
    let o = env.run(&["config", "check"]);
    assert!(
        stderr(&o).contains(":13:12: template: unknown placeholder {eror} (did you mean {error}?)"),
        "{}",
        stderr(&o)
    );

    // A bad address is a config error at its line.
    write_config(&env, &config.replace("ops@example.net", "not an address"));
    let o = env.run(&["config", "check"]);
    assert!(
        stderr(&o).contains(":12:9: email: \"not an address\" is not an email address"),
        "{}",
        stderr(&o)
    );
}

/// Email over STARTTLS and over implicit TLS to a real SMTP server whose certificate a
/// private CA (`ca-file`) vouches for; without it the certificate is refused, and a
/// server that cannot STARTTLS is refused rather than sent to in the clear.
#[test]
fn email_goes_over_starttls_and_tls_with_a_verified_certificate() {
    let env = Env::new();
    env.init();
    let (cert, key) = crate::common::self_signed(&env.path("tls"), "DNS:localhost");
    let src = source_tree(&env);
    let send = |security: &str, port: u16, ca: bool| {
        let ca = if ca {
            format!(", ca-file = \"{}\"", cert.display())
        } else {
            String::new()
        };
        write_config(
            &env,
            &format!(
                r#"[repositories.main]
location = "{repo}"
password-env = "REPO_PASSWORD"

[plans.app]
repository = "main"
paths = ["{src}"]
hooks = {{ before = "exit 9" }}
notify = ["mail"]

[notify.mail]
email = {{ to = ["ops@example.net"], from = "repo@example.net", server = "localhost", port = {port}, security = "{security}"{ca} }}
"#,
                repo = env.repo().display(),
                src = src.display(),
            ),
        );
        let o = env.run(&["run", "app", "--json"]);
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        r["notifications"][0].clone()
    };
    let read = |mut sink: std::process::Child| {
        let _ = sink.kill();
        String::from_utf8_lossy(&sink.wait_with_output().unwrap().stdout).to_string()
    };
    let (c, k) = (cert.as_os_str(), key.as_os_str());
    for (security, flags) in [
        ("starttls", ["--tlscert", "--tlskey"]),
        ("tls", ["--smtpscert", "--smtpskey"]),
    ] {
        let args = [
            std::ffi::OsStr::new(flags[0]),
            c,
            std::ffi::OsStr::new(flags[1]),
            k,
        ];
        let (sink, port) = crate::common::smtp_sink_with(&args);
        let d = send(security, port, true);
        assert_eq!(d["ok"], true, "{security}: {d}");
        let mail = read(sink);
        assert!(
            mail.contains("Subject: [repo] app failure: skipped"),
            "{security}: {mail}"
        );

        let (sink, port) = crate::common::smtp_sink_with(&args);
        let d = send(security, port, false);
        assert_eq!(d["ok"], false, "{security}: an unknown CA is refused: {d}");
        assert!(!read(sink).contains("Subject:"), "{security}: nothing sent");
    }
    // A server without STARTTLS: refused, not sent in the clear.
    let (sink, port) = crate::common::smtp_sink();
    let d = send("starttls", port, true);
    assert_eq!(d["ok"], false, "{d}");
    assert!(!read(sink).contains("Subject:"));
}
