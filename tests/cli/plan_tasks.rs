//! A plan's check and prune on schedules of their own: the config file's rules, `repo run
//! PLAN --task check|prune`, `repo plans`, the operation log, and `repo serve` running
//! them on their schedules — a damaged pack found by the scheduled check alerts a webhook
//! with the task named; pruning is an admin's call over the API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Env;
use crate::plans::listener;
use crate::serve_client::{config, token, Server};

fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    crate::common::write_big_file(&src.join("big.bin"), 3 << 20, 11);
    std::fs::write(src.join("small.txt"), "small").unwrap();
    src
}

fn plan_config(env: &Env, src: &Path, extra: &str) {
    config(
        env,
        &format!(
            r#"[repositories.main]
location = "{repo}"
password-env = "REPO_PASSWORD"

[plans.app]
repository = "main"
paths = ["{src}"]
retention = {{ keep-last = 1 }}
{extra}
"#,
            repo = env.repo().display(),
            src = src.display(),
        ),
    );
}

fn steps(report: &Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn config_rules_for_check_and_prune_schedules() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    let cases = [
        (
            r#"check = { read-data = true, read-data-subset = "10%" }"#,
            "not both",
        ),
        (r#"scheduled-check = { read-data = true }"#, "schedule"),
        (
            r#"scheduled-check = { schedule = "0 3 * * 0", read-data = true, read-data-subset = "1%" }"#,
            "not both",
        ),
        (
            r#"check = { schedule = "0 3 * * 0" }"#,
            "unknown key `schedule`",
        ),
        (r#"check = { read-data-subset = "150%" }"#, "at most 100%"),
        (
            r#"scheduled-check = { schedule = "every sunday" }"#,
            "schedule",
        ),
        (
            r#"prune = { schedule = "0 4 1 * *", max-unused = "200%" }"#,
            "max-unused",
        ),
        (r#"prune = { max-unused = "5%" }"#, "schedule"),
        (
            r#"prune = { schedule = "0 4 1 * *", grace = "1h" }"#,
            "unknown key `grace`",
        ),
    ];
    for (line, want) in cases {
        plan_config(&env, &src, line);
        let o = env.run(&["config", "check"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{line}: {err}");
        assert!(err.contains(want), "{line}: {err}");
        assert!(err.contains("config.toml:"), "{line}: file:line:col: {err}");
    }
    // retention's own prune = true next to a prune schedule is ambiguous.
    config(
        &env,
        &format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n\n[plans.app]\nrepository = \"main\"\npaths = [\"{}\"]\nretention = {{ keep-last = 1, prune = true }}\nprune = {{ schedule = \"0 4 1 * *\" }}\n",
            env.repo().display(),
            src.display()
        ),
    );
    let o = env.run(&["config", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not both"));
}

#[test]
fn run_task_check_and_prune_from_the_command_line() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    plan_config(
        &env,
        &src,
        r#"check = { read-data-subset = "1B" }
scheduled-check = { schedule = "0 3 * * 0", read-data-subset = "1/1" }
prune = { schedule = "0 4 1 * *", max-unused = "0%" }"#,
    );
    env.ok(&["config", "check"]);
    let plans = env.ok(&["plans"]);
    assert!(
        plans.contains("check       after each run, reading a subset of the packs (1B)"),
        "{plans}"
    );
    assert!(
        plans.contains("sched check 0 3 * * 0 (next: ")
            && plans.contains("reading a subset of the packs (1/1)"),
        "{plans}"
    );
    assert!(plans.contains("prune       0 4 1 * * (next: "), "{plans}");

    // Backups check a little (one pack's worth of bytes) and do not prune: the full
    // check and the prune have schedules of their own.
    let first = env.json(&["run", "app"]);
    assert_eq!(first["status"], "ok", "{first}");
    assert_eq!(steps(&first), ["snapshot", "forget", "check"]);
    assert_eq!(first["steps"][2]["report"]["packs_read"], 1, "{first}");
    std::fs::write(src.join("big.bin"), "replaced").unwrap();
    let second = env.json(&["run", "app"]);
    assert_eq!(steps(&second), ["snapshot", "forget", "check"]);
    assert!(second["steps"][1]["report"]["prune"].is_null(), "{second}");

    let check = env.json(&["run", "app", "--task", "check"]);
    assert_eq!(check["status"], "ok", "{check}");
    assert_eq!(check["task"], "check");
    assert_eq!(steps(&check), ["check"]);
    let c = &check["steps"][0]["report"];
    assert_eq!(c["packs_read"], c["packs"], "1/1 reads every pack: {c}");
    assert!(check["snapshot"].is_null());

    let before = crate::common::objects(&env.repo()).len();
    let prune = env.json(&["run", "app", "--task", "prune"]);
    assert_eq!(prune["status"], "ok", "{prune}");
    assert_eq!(steps(&prune), ["prune"]);
    let r = &prune["steps"][0]["report"];
    assert!(
        r["packs_unindexed"].as_u64().unwrap() + r["packs_rewritten"].as_u64().unwrap() > 0,
        "the forgotten snapshot's big file is reclaimed: {prune}"
    );
    assert!(crate::common::objects(&env.repo()).len() >= before - 1);
    let o = env.run(&["run", "app", "--task", "prune", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "dry run is for backups");
    let o = env.run(&["run", "app", "--task", "fsck"]);
    assert_eq!(o.status.code(), Some(2));

    // The operation log names them; the plan state remembers them apart from backups.
    let log = env.json(&["history"]);
    let kinds: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["plan"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("check", "app")) && kinds.contains(&("prune", "app")),
        "{kinds:?}"
    );
    let plans = env.json(&["plans"]);
    let p = &plans[0];
    assert_eq!(p["last_check"]["status"], "ok", "{p}");
    assert_eq!(p["last_prune"]["status"], "ok", "{p}");
    assert_eq!(p["last_run"]["id"], second["operation"], "{p}");
    assert!(
        p["next_check"].is_string() && p["next_prune"].is_string(),
        "{p}"
    );
    let shown = env.ok(&["plans"]);
    assert!(
        shown.contains("last check") && shown.contains("last prune"),
        "{shown}"
    );
    env.ok(&["check", "--read-data"]);
}

fn first_pack(repo: &Path) -> PathBuf {
    let mut all = Vec::new();
    for d in std::fs::read_dir(repo.join("packs")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            let len = std::fs::metadata(&p).unwrap().len();
            all.push((len, p));
        }
    }
    all.sort();
    all.pop().expect("a pack").1
}

fn jobs_of(jobs: &Value, kind: &str) -> Vec<Value> {
    jobs.as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == kind && j["plan"] == "app")
        .cloned()
        .collect()
}

#[test]
fn the_service_runs_checks_and_prunes_on_their_schedules_and_alerts() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    let (hook_url, got) = listener(200);
    plan_config(
        &env,
        &src,
        &format!(
            r#"scheduled-check = {{ schedule = "*/2 * * * * *", read-data = true }}
prune = {{ schedule = "*/3 * * * * *" }}
notify = ["hook"]

[notify.hook]
webhook = "{hook_url}/alert"
on = ["failure", "recovered"]

# Waiting for a lock does not yet heed a cancel: keep waits short so SIGTERM is prompt.
[service]
lock-wait = "2s"
"#
        ),
    );
    env.ok(&["run", "app"]);
    let viewer = token(&env, "v", "viewer");
    let operator = token(&env, "o", "operator");
    let admin = token(&env, "a", "admin");
    let srv = Server::start(&env, &[]);

    // Wait for a successful scheduled check and prune (a prune waits for the checks'
    // shared locks: generous under a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(180);
    let done_ok = |jobs: &Value, kind: &str| {
        jobs_of(jobs, kind)
            .iter()
            .any(|j| j["state"] == "ok" && j["requested_by"] == "scheduler")
    };
    loop {
        let jobs = srv.get("/api/jobs", &viewer);
        if done_ok(&jobs, "check") && done_ok(&jobs, "prune") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled check and prune: {jobs}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let plans = srv.get("/api/plans", &viewer);
    let m = plans[0]["maintenance"].as_array().unwrap();
    assert_eq!(m.len(), 2, "{plans}");
    assert!(
        m.iter()
            .all(|t| t["next_run"].is_string() && t["schedule"].is_string()),
        "{plans}"
    );
    // A check that finds prune's exclusive lock held past `lock-wait` fails (and shows 0):
    // with these schedules the last run may be such a one, so wait for one that is not.
    let wants = [
        "repo_plan_task_last_run_success{plan=\"app\",task=\"check\"} 1",
        "repo_plan_task_last_run_success{plan=\"app\",task=\"prune\"} 1",
        "repo_plan_task_next_run_timestamp_seconds{plan=\"app\",task=\"check\"}",
    ];
    loop {
        let metrics = srv.call("GET", "/metrics", Some(&viewer), None).1;
        let text = metrics.as_str().unwrap().to_string();
        let missing: Vec<&str> = wants.into_iter().filter(|w| !text.contains(w)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{missing:?}: {text}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Pruning on request is an admin's; a task the plan does not know is a 400.
    let (code, _) = srv.call(
        "POST",
        "/api/plans/app/run?task=prune",
        Some(&operator),
        None,
    );
    assert_eq!(code, 403);
    let (code, body) = srv.call(
        "POST",
        "/api/plans/app/run?task=fsck",
        Some(&operator),
        None,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = srv.call(
        "POST",
        "/api/plans/app/run?task=check",
        Some(&operator),
        None,
    );
    assert!(code == 202 || code == 409, "{code} {body}");
    let (code, body) = srv.call("POST", "/api/plans/app/run?task=prune", Some(&admin), None);
    assert!(code == 202 || code == 409, "{code} {body}");

    // Damage: the next scheduled check fails and the webhook hears it, task named.
    let pack = first_pack(&env.repo());
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let alert = loop {
        let hit = got.lock().unwrap().iter().find_map(|(_, body)| {
            let v: Value = serde_json::from_slice(body).ok()?;
            (v["event"] == "failure" && v["task"] == "check").then_some(v)
        });
        if let Some(v) = hit {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no failure alert; {}",
            srv.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(alert["task"], "check", "{alert}");
    assert_eq!(alert["plan"], "app");
    assert!(
        alert["message"].as_str().unwrap().contains("check failed"),
        "{alert}"
    );
    // The alert goes out as the job ends; its state follows a moment later.
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs = loop {
        let jobs = srv.get("/api/jobs", &viewer);
        let failed = jobs_of(&jobs, "check")
            .iter()
            .any(|j| j["state"] == "failed");
        if failed || Instant::now() > deadline {
            break jobs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        jobs_of(&jobs, "check")
            .iter()
            .any(|j| j["state"] == "failed"),
        "{jobs}"
    );
    // Backups were not touched by either: the only backup run is the one before serving.
    assert!(jobs_of(&jobs, "run").is_empty(), "{jobs}");
    let (code, log) = srv.stop();
    assert_eq!(code, Some(0), "{log}");
    let history = env.json(&["history"]);
    let checks = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "check" && r["plan"] == "app")
        .count();
    assert!(checks >= 2, "{history}");
}
