//! `repo serve`'s scheduler and lifecycle: a two-second schedule never overlaps itself, a
//! run missed while the service was down runs once at start and its failure alerts a
//! webhook and a real SMTP server, SIGTERM waits then cancels cleanly, and a
//! non-loopback address needs TLS.

use std::time::Duration;

use serde_json::Value;

use crate::common::{smtp_sink, Env};
use crate::plans::listener;
use crate::serve_client::{config, token, Server};

fn runs_of<'a>(jobs: &'a Value, plan: &str) -> Vec<&'a Value> {
    let mut v: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["plan"] == plan)
        .collect();
    v.sort_by_key(|j| j["created"].as_str().unwrap().to_string());
    v
}

#[test]
fn schedules_never_overlap_and_a_missed_run_catches_up_and_alerts() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    let (hook_url, got) = listener(200);
    let (mut smtp, port) = smtp_sink();
    config(
        &env,
        &format!(
            r#"[repositories.main]
location = "{repo}"
password-env = "REPO_PASSWORD"

[plans.tick]
repository = "main"
paths = ["{data}"]
schedule = "*/2 * * * * *"
hooks = {{ before = "sleep 3" }}

[plans.nightly]
repository = "main"
paths = ["{missing}"]
schedule = "0 3 * * *"
notify = ["hook", "mail"]
stale-after = "26h"

[notify.hook]
webhook = "{hook_url}/alert"

[notify.mail]
email = {{ to = ["ops@example.net"], from = "repo@example.net", server = "127.0.0.1", port = {port}, security = "none" }}
"#,
            repo = env.repo().display(),
            data = data.display(),
            missing = env.path("gone").display(),
        ),
    );
    // The service was down at 03:00 yesterday: nightly last ran two days ago.
    let state = env.path("home/.local/state/repo/plans");
    std::fs::create_dir_all(&state).unwrap();
    let two_days = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    std::fs::write(
        state.join("nightly.json"),
        format!(r#"{{"last_run": {{"id": "01J0000000000000000000000", "started": "{two_days}", "finished": "{two_days}", "status": "ok", "snapshot": null}}, "last_success": "{two_days}"}}"#),
    )
    .unwrap();
    let viewer = token(&env, "v", "viewer");
    let srv = Server::start(&env, &[]);
    // Until two tick runs have ended, the caught-up nightly run has failed and both its
    // alerts went out (about 8 s; longer on a loaded machine).
    let start = std::time::Instant::now();
    let alerted = |what: &str| {
        got.lock()
            .unwrap()
            .iter()
            .any(|(_, body)| String::from_utf8_lossy(body).contains(what))
    };
    let jobs = loop {
        let jobs = srv.get("/api/jobs", &viewer);
        let ended = |j: &&Value| j["finished"].is_string();
        let ticks = runs_of(&jobs, "tick").into_iter().filter(ended).count();
        let nightly = runs_of(&jobs, "nightly").into_iter().filter(ended).count();
        if ticks >= 2 && nightly >= 1 && alerted("\"failure\"") && alerted("\"stale\"") {
            break jobs;
        }
        assert!(start.elapsed().as_secs() < 120, "{jobs}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The mail goes out beside the webhook; the sink shows it only once stopped.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(start.elapsed()));
    let metrics = srv.call("GET", "/metrics", Some(&viewer), None).1;
    let (code, log) = srv.stop();
    assert_eq!(code, Some(0), "{log}");

    let ticks = runs_of(&jobs, "tick");
    assert!(ticks.len() >= 2, "{jobs}");
    for w in ticks.windows(2) {
        let (prev, next) = (w[0], w[1]);
        assert!(
            next["started"].as_str() >= prev["finished"].as_str() && prev["finished"].is_string(),
            "runs overlap: {prev} {next}"
        );
    }
    assert!(ticks.iter().all(|j| j["requested_by"] == "scheduler"));
    let m = metrics.as_str().unwrap();
    assert!(
        m.contains("repo_plan_runs_skipped_total{plan=\"tick\"}"),
        "{m}"
    );
    assert!(
        m.contains("repo_plan_next_run_timestamp_seconds{plan=\"tick\"}"),
        "{m}"
    );

    // Caught up once, failed, alerted.
    let nightly = runs_of(&jobs, "nightly");
    assert_eq!(nightly.len(), 1, "{jobs}");
    assert_eq!(nightly[0]["state"], "failed", "{}", nightly[0]);
    let hooks = got.lock().unwrap().clone();
    assert!(
        hooks
            .iter()
            .any(|(_, body)| String::from_utf8_lossy(body).contains("\"failure\"")),
        "webhook: {hooks:?}"
    );
    assert!(
        hooks
            .iter()
            .any(|(_, body)| String::from_utf8_lossy(body).contains("\"stale\"")),
        "no successful run for 26h: stale; {hooks:?}"
    );
    let _ = smtp.kill();
    let mail = String::from_utf8_lossy(&smtp.wait_with_output().unwrap().stdout).into_owned();
    assert!(mail.contains("nightly failure"), "{mail}");

    // Started again: nightly ran recently, so no second catch-up.
    let srv = Server::start(&env, &[]);
    std::thread::sleep(Duration::from_secs(2));
    let jobs = srv.get("/api/jobs", &viewer);
    assert!(runs_of(&jobs, "nightly").is_empty(), "{jobs}");
    drop(srv);
}

#[test]
fn sigterm_lets_jobs_finish_for_the_grace_period_then_cancels_them() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    config(
        &env,
        &format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n\n[plans.p]\nrepository = \"main\"\npaths = [\"{}\"]\n\n[service]\ngrace = \"1s\"\n",
            env.repo().display(),
            data.display()
        ),
    );
    let op = token(&env, "op", "operator");
    let gate = crate::common::Gate::new();
    let srv = Server::start(
        &env,
        &[("REPO_FAILPOINT", &gate.failpoint("snapshot-before-commit"))],
    );
    let (s, _) = srv.call("POST", "/api/plans/p/run", Some(&op), None);
    assert_eq!(s, 202);
    srv.wait_log("failpoint snapshot-before-commit");
    // The job outlasts the grace period: it is still held when the service cancels it,
    // and only then goes on to the commit that must see the cancellation.
    srv.signal_stop();
    srv.wait_log("cancelling: the grace period is over");
    gate.release();
    let (code, log) = srv.wait_exit();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        env.json(&["snapshots"]).as_array().unwrap().is_empty(),
        "no half snapshot"
    );
    assert!(
        env.json(&["locks"]).as_array().unwrap().is_empty(),
        "locks released"
    );
    let hist = env.json(&["history"]);
    assert_eq!(hist[0]["result"], "cancelled", "{hist}");
    assert_eq!(hist[0]["token"], "op", "{hist}");
}

#[test]
fn a_non_loopback_address_needs_tls_and_tls_serves() {
    let env = Env::new();
    env.init();
    config(
        &env,
        &format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n",
            env.repo().display()
        ),
    );
    let o = env.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_ne!(o.status.code(), Some(0));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("refusing to serve plain HTTP on 0.0.0.0:0"),
        "{e}"
    );

    let dir = env.path("tls");
    crate::common::self_signed(&dir, "IP:127.0.0.1");
    let mut c = env.cmd(&["serve", "--listen", "127.0.0.1:0"]);
    c.arg("--tls-cert").arg(dir.join("cert.pem"));
    c.arg("--tls-key").arg(dir.join("key.pem"));
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    assert!(base.starts_with("https://"), "{base}");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.join("cert.pem"))
        .arg(format!("{base}/healthz"))
        .output()
        .expect("curl");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("\"status\":\"ok\""),
        "{body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
