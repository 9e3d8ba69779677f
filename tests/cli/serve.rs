//! `repo serve` over real HTTP: the auth matrix, backup → job → status → history, preview
//! and restore byte for byte, verify, forget, tokens, metrics, the OpenAPI document, and
//! cancelling a running snapshot.

use serde_json::{json, Value};

use crate::common::{assert_same_tree, write_big_file, Env};
use crate::serve_client::{config, token, Server};

fn setup(env: &Env, extra: &str) -> std::path::PathBuf {
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(data.join("docs")).unwrap();
    std::fs::write(data.join("docs/a.txt"), "alpha\n").unwrap();
    std::fs::write(data.join("b.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::create_dir_all(env.path("restore")).unwrap();
    config(
        env,
        &format!(
            r#"[repositories.main]
location = "{repo}"
password-env = "REPO_PASSWORD"

[plans.files]
repository = "main"
paths = ["{data}"]
{extra}

[service]
restore-roots = ["{restore}"]
"#,
            repo = env.repo().display(),
            data = data.display(),
            restore = env.path("restore").display(),
        ),
    );
    data
}

/// Every endpoint with the least role it needs.
fn endpoints() -> Vec<(&'static str, &'static str, Option<Value>, &'static str)> {
    vec![
        ("GET", "/api/backup/list", None, "viewer"),
        ("GET", "/api/backup/storage", None, "viewer"),
        ("GET", "/api/backup/latest", None, "viewer"),
        ("GET", "/api/recovery/history", None, "viewer"),
        ("GET", "/api/jobs", None, "viewer"),
        ("GET", "/api/plans", None, "viewer"),
        ("GET", "/metrics", None, "viewer"),
        (
            "POST",
            "/api/backup/create",
            Some(json!({"plan": "files"})),
            "operator",
        ),
        ("POST", "/api/backup/latest/verify", None, "operator"),
        ("POST", "/api/plans/nope/run", None, "operator"),
        ("DELETE", "/api/backup/00000000", None, "admin"),
        ("GET", "/api/tokens", None, "admin"),
        ("GET", "/api/audit", None, "admin"),
    ]
}

#[test]
fn auth_matrix_every_role_on_every_endpoint() {
    let env = Env::new();
    setup(&env, "");
    env.ok(&["run", "files"]);
    let toks: Vec<(&str, String)> = ["viewer", "operator", "admin"]
        .iter()
        .map(|r| (*r, token(&env, &format!("t-{r}"), r)))
        .collect();
    let srv = Server::start(&env, &[]);
    let rank = |r: &str| {
        ["viewer", "operator", "admin"]
            .iter()
            .position(|x| *x == r)
            .unwrap()
    };
    for (method, path, body, least) in endpoints() {
        let (s, v) = srv.call(method, path, None, body.as_ref());
        assert_eq!(s, 401, "{method} {path} without a token: {v}");
        assert_eq!(v["code"], "unauthorized");
        for (role, tok) in &toks {
            let (s, v) = srv.call(method, path, Some(tok), body.as_ref());
            if rank(role) < rank(least) {
                assert_eq!(s, 403, "{method} {path} as {role}: {v}");
                assert_eq!(v["code"], "forbidden");
            } else {
                assert!(
                    ![401, 403].contains(&s) && s < 500,
                    "{method} {path} as {role}: {s} {v}"
                );
            }
        }
    }
    // Open endpoints.
    let (s, v) = srv.call("GET", "/healthz", None, None);
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    let (s, doc) = srv.call("GET", "/api/openapi.json", None, None);
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    for p in [
        "/api/backup/list",
        "/api/recovery/restore",
        "/api/jobs/{id}/cancel",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the document"
        );
    }
    // Unknown routes and bad input are problem documents too.
    let (s, v) = srv.call("GET", "/api/nothing", Some(&toks[0].1), None);
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
    let (s, v) = srv.call("GET", "/api/backup/list?latest=x", Some(&toks[0].1), None);
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid")), "{v}");
    // Guessing tokens: after 20 failures this address is refused for a minute, even
    // with a good token.
    let mut limited = false;
    for i in 0..25 {
        let (s, _) = srv.call("GET", "/api/jobs", Some(&format!("repo_{i:064}")), None);
        if s == 429 {
            limited = true;
            break;
        }
        assert_eq!(s, 401);
    }
    assert!(limited, "failed authentications are rate limited");
    let (s, _) = srv.call("GET", "/api/jobs", Some(&toks[2].1), None);
    assert_eq!(s, 429);
}

#[test]
fn backup_restore_verify_forget_through_the_api() {
    let env = Env::new();
    let data = setup(&env, "");
    let viewer = token(&env, "dash", "viewer");
    let op = token(&env, "ops-bot", "operator");
    let admin = token(&env, "root", "admin");
    let srv = Server::start(&env, &[]);

    // Create → job → status → history.
    let (s, job) = srv.call(
        "POST",
        "/api/backup/create",
        Some(&op),
        Some(&json!({"plan": "files"})),
    );
    assert_eq!(s, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["requested_by"], "ops-bot");
    let done = srv.wait_job(&id, &viewer);
    assert_eq!(done["state"], "ok", "{done}");
    let snap = done["report"]["snapshot"].as_str().unwrap().to_string();
    let st = srv.get(&format!("/api/recovery/status/{id}"), &viewer);
    assert_eq!(st["state"], "ok");
    let hist = srv.get("/api/recovery/history?kind=run", &viewer);
    let rec = hist
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("run record");
    assert_eq!(
        (rec["token"].as_str(), rec["plan"].as_str()),
        (Some("ops-bot"), Some("files"))
    );
    let events = srv
        .call(
            "GET",
            &format!("/api/jobs/{id}/events"),
            Some(&viewer),
            None,
        )
        .1;
    assert!(events.as_str().unwrap().contains("event: done"), "{events}");

    // The snapshot: listed, shown with its top directory.
    let list = srv.get("/api/backup/list?plan=files", &viewer);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let show = srv.get(&format!("/api/backup/{}", &snap[..8]), &viewer);
    assert_eq!(show["snapshot"]["id"], snap.as_str());
    assert!(!show["entries"].as_array().unwrap().is_empty());

    // Preview, then restore, byte for byte.
    let target = env.path("restore/r1");
    let q = format!(
        "/api/recovery/preview?snapshot={snap}&target={}",
        target.display()
    );
    let preview = srv.get(&q, &viewer);
    assert!(preview["plan"].as_array().unwrap().len() >= 2, "{preview}");
    assert!(
        !target.join(data.strip_prefix("/").unwrap()).exists(),
        "a preview writes nothing"
    );
    let body = json!({"snapshot": snap, "target": target});
    let (s, job) = srv.call("POST", "/api/recovery/restore", Some(&op), Some(&body));
    assert_eq!(s, 202, "{job}");
    let done = srv.wait_job(job["id"].as_str().unwrap(), &op);
    assert_eq!(done["state"], "ok", "{done}");
    assert_same_tree(&data, &target.join(data.strip_prefix("/").unwrap()));

    // Nowhere outside the restore roots, however it is spelled.
    for t in [env.path("elsewhere"), env.path("restore/../elsewhere")] {
        let (s, v) = srv.call(
            "POST",
            "/api/recovery/restore",
            Some(&op),
            Some(&json!({"target": t})),
        );
        assert_eq!(s, 403, "{t:?}: {v}");
    }
    std::os::unix::fs::symlink(env.path("home"), env.path("restore/link")).unwrap();
    let (s, _) = srv.call(
        "POST",
        "/api/recovery/restore",
        Some(&op),
        Some(&json!({"target": env.path("restore/link/x")})),
    );
    assert_eq!(s, 403, "a link out of the root");
    let (s, _) = srv.call(
        "POST",
        "/api/backup/create",
        Some(&op),
        Some(&json!({"paths": ["/etc"]})),
    );
    assert_eq!(s, 403, "only what plans back up");

    // Verify, then forget as admin.
    let (s, job) = srv.call(
        "POST",
        &format!("/api/backup/{snap}/verify"),
        Some(&op),
        None,
    );
    assert_eq!(s, 202);
    let v = srv.wait_job(job["id"].as_str().unwrap(), &op);
    assert_eq!(v["state"], "ok", "{v}");
    assert!(v["report"]["blobs"].as_u64().unwrap() >= 2);
    let (s, job) = srv.call("DELETE", &format!("/api/backup/{snap}"), Some(&admin), None);
    assert_eq!(s, 202, "{job}");
    assert_eq!(
        srv.wait_job(job["id"].as_str().unwrap(), &admin)["state"],
        "ok"
    );
    assert!(srv
        .get("/api/backup/list", &viewer)
        .as_array()
        .unwrap()
        .is_empty());
    // Every operation is in the log with its token.
    let hist = srv.get("/api/recovery/history", &viewer);
    let kinds: Vec<(String, String)> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["token"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for want in [
        ("run", "ops-bot"),
        ("restore", "ops-bot"),
        ("verify", "ops-bot"),
        ("forget", "root"),
    ] {
        assert!(
            kinds.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {kinds:?}"
        );
    }

    // Metrics; repository statistics are refreshed in the background after the forget.
    let start = std::time::Instant::now();
    let m = loop {
        let (s, m) = srv.call("GET", "/metrics", Some(&viewer), None);
        assert_eq!(s, 200);
        let m = m.as_str().unwrap().to_string();
        if m.contains("repo_repository_snapshots{repository=\"main\"} 0") {
            break m;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "no repository statistics: {m}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        m.contains("repo_repository_size_bytes{repository=\"main\"}"),
        "{m}"
    );
    for want in [
        "repo_plan_last_run_success{plan=\"files\"} 1",
        "repo_jobs_total{kind=\"restore\",result=\"ok\"} 1",
        "repo_http_requests_total{route=\"/api/backup/list\",method=\"GET\",status=\"200\"}",
        "repo_jobs_current{state=\"running\"} 0",
    ] {
        assert!(m.contains(want), "{want} in\n{m}");
    }

    // Tokens over the API; a revoked token is refused at once.
    let (s, t) = srv.call(
        "POST",
        "/api/tokens",
        Some(&admin),
        Some(&json!({"name": "tmp", "role": "viewer"})),
    );
    assert_eq!(s, 201, "{t}");
    let tmp = t["token"].as_str().unwrap().to_string();
    srv.get("/api/jobs", &tmp);
    let (s, _) = srv.call("DELETE", "/api/tokens/tmp", Some(&admin), None);
    assert_eq!(s, 204);
    assert_eq!(srv.call("GET", "/api/jobs", Some(&tmp), None).0, 401);

    // The audit log has every call: reads, token changes, the refused one.
    let audit = srv.get("/api/audit?limit=10000", &admin);
    let calls: Vec<(String, String, u64, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_string(),
                e["route"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
                e["token"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    for want in [
        ("GET", "/api/backup/list", 200, "dash"),
        ("POST", "/api/tokens", 201, "root"),
        ("DELETE", "/api/tokens/{name}", 204, "root"),
        ("GET", "/api/jobs", 200, "tmp"),
        ("GET", "/api/jobs", 401, "-"),
        ("POST", "/api/recovery/restore", 202, "ops-bot"),
    ] {
        let want = (
            want.0.to_string(),
            want.1.to_string(),
            want.2,
            want.3.to_string(),
        );
        assert!(
            calls.contains(&want),
            "{want:?} not in the audit log: {calls:?}"
        );
    }
    assert_eq!(audit[0]["ip"], "127.0.0.1", "{}", audit[0]);
    let only = srv.get("/api/audit?token=tmp", &admin);
    assert!(
        only.as_array().unwrap().iter().all(|e| e["token"] == "tmp"),
        "{only}"
    );
    assert_eq!(srv.call("GET", "/api/audit", Some(&viewer), None).0, 403);
    assert_eq!(
        srv.call("GET", "/api/audit?limit=0", Some(&admin), None).0,
        400
    );
    let audit_file = env.path("home/.local/state/repo/audit.jsonl");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&audit_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let audit_text = std::fs::read_to_string(&audit_file).unwrap();
    let (code, log) = srv.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.lines().any(|l| l.contains("request")
            && l.contains("route=/api/recovery/restore")
            && l.contains("token=ops-bot")
            && l.contains("status=202")),
        "the access log names the route, status and token: {log}"
    );
    for secret in [
        &viewer,
        &op,
        &admin,
        &tmp,
        &"correct horse battery staple".to_string(),
    ] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the service log"
        );
        assert!(
            !audit_text.contains(secret.as_str()),
            "a secret in the audit log"
        );
    }
}

#[test]
fn cancelling_a_running_snapshot_commits_nothing_and_releases_the_lock() {
    let env = Env::new();
    let data = setup(&env, "");
    write_big_file(&data.join("big"), 8 << 20, 3);
    let op = token(&env, "op", "operator");
    let gate = crate::common::Gate::new();
    let srv = Server::start(
        &env,
        &[("REPO_FAILPOINT", &gate.failpoint("snapshot-before-commit"))],
    );
    let (s, job) = srv.call(
        "POST",
        "/api/backup/create",
        Some(&op),
        Some(&json!({"plan": "files"})),
    );
    assert_eq!(s, 202);
    let id = job["id"].as_str().unwrap().to_string();
    srv.wait_log("failpoint snapshot-before-commit");
    let (s, v) = srv.call("POST", &format!("/api/jobs/{id}/cancel"), Some(&op), None);
    assert_eq!(s, 202, "{v}");
    gate.release();
    let done = srv.wait_job(&id, &op);
    assert_eq!(done["state"], "cancelled", "{done}");
    assert!(
        srv.get("/api/backup/list", &op)
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing committed"
    );
    let (s, _) = srv.call("POST", &format!("/api/jobs/{id}/cancel"), Some(&op), None);
    assert_eq!(s, 409, "already ended");
    drop(srv);
    let locks = env.json(&["locks"]);
    assert!(
        locks.as_array().unwrap().is_empty(),
        "lock released: {locks}"
    );
    let hist = env.json(&["history", "--kind", "run"]);
    assert_eq!(hist[0]["result"], "cancelled", "{hist}");
}

#[test]
fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() {
    let st = crate::common::service("REPO_TEST_SCHEMATHESIS")
        .expect("REPO_TEST_SCHEMATHESIS (scripts/test installs schemathesis)");
    let env = Env::new();
    setup(&env, "");
    env.ok(&["run", "files"]);
    let admin = token(&env, "schemathesis", "admin");
    let srv = Server::start(&env, &[]);
    let o = std::process::Command::new(st)
        .args([
            "run",
            "--experimental=openapi-3.1",
            "--hypothesis-max-examples",
            "30",
        ])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        ])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["--base-url", &srv.base])
        .arg(format!("{}/api/openapi.json", srv.base))
        .env("HOME", env.path("home"))
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("schemathesis");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("passed"), "{out}");
    let (code, log) = srv.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn mongodb_scan_preview_and_restore_through_the_api() {
    use mongodb::bson::{doc, Document};
    let (uri, client) = crate::common::mongo_server().expect("REPO_TEST_MONGODB_URI");
    let db = crate::common::unique_db("api");
    let orders = client.database(&db).collection::<Document>("orders");
    let docs: Vec<Document> = (0..40)
        .map(|i| doc! {"_id": i, "item": format!("item {i}"), "qty": i * 3, "tags": ["a", "b"]})
        .collect();
    orders.insert_many(docs.clone()).run().unwrap();
    let env = Env::new();
    env.init();
    config(
        &env,
        &format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n\n[plans.db]\nrepository = \"main\"\nmongodb = {{ uri-env = \"APP_MONGODB_URI\", databases = [\"{db}\"] }}\n",
            env.repo().display()
        ),
    );
    let op = token(&env, "op", "operator");
    let srv = Server::start(&env, &[("APP_MONGODB_URI", &uri)]);
    let (s, job) = srv.call(
        "POST",
        "/api/backup/create",
        Some(&op),
        Some(&json!({"plan": "db"})),
    );
    assert_eq!(s, 202, "{job}");
    let done = srv.wait_job(job["id"].as_str().unwrap(), &op);
    assert_eq!(done["state"], "ok", "{done}");

    // Damage the live collection; the scan sees it.
    orders.delete_many(doc! {"_id": {"$lt": 5}}).run().unwrap();
    let scan = srv.get("/api/recovery/scan?mongodb_plan=db", &op);
    assert!(scan.to_string().contains(&format!("{db}.orders")), "{scan}");

    // Preview, then restore into another database, document for document.
    let target = format!("{db}_r");
    let rename = format!("{db}.orders:{target}.orders");
    let q = format!("/api/recovery/preview?mongodb_plan=db&rename={rename}");
    let preview = srv.get(&q, &op);
    assert_eq!(preview["dry_run"], true, "{preview}");
    assert!(
        client
            .database(&target)
            .list_collection_names()
            .run()
            .unwrap()
            .is_empty(),
        "a preview writes nothing"
    );
    let body = json!({"mongodb_plan": "db", "rename": rename});
    let (s, job) = srv.call("POST", "/api/recovery/restore", Some(&op), Some(&body));
    assert_eq!(s, 202, "{job}");
    let done = srv.wait_job(job["id"].as_str().unwrap(), &op);
    assert_eq!(done["state"], "ok", "{done}");
    let mut restored: Vec<Document> = client
        .database(&target)
        .collection::<Document>("orders")
        .find(doc! {})
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    restored.sort_by_key(|d| d.get_i32("_id").unwrap());
    assert_eq!(restored, docs);
    // The plan's own server is the only one the API can name.
    let (s, v) = srv.call(
        "POST",
        "/api/recovery/restore",
        Some(&op),
        Some(&json!({"mongodb_plan": "nope"})),
    );
    assert_eq!(s, 404, "{v}");
    let _ = client.database(&db).drop().run();
    let _ = client.database(&target).drop().run();
}

/// The repository deleted and created again at its location while the service runs (an
/// operator starting over): the next job opens what is there now. With the old handle it
/// would seal everything with the old key, noise that fails `check` in the new one.
#[test]
fn a_repository_created_again_under_the_service_is_opened_again() {
    let env = Env::new();
    setup(&env, "");
    let op = token(&env, "ops-bot", "operator");
    let srv = Server::start(&env, &[]);
    let backup = || {
        let (s, job) = srv.call(
            "POST",
            "/api/backup/create",
            Some(&op),
            Some(&json!({"plan": "files"})),
        );
        assert_eq!(s, 202, "{job}");
        srv.wait_job(job["id"].as_str().unwrap(), &op)
    };
    assert_eq!(backup()["state"], "ok");
    std::fs::remove_dir_all(env.repo()).unwrap();
    env.init();
    let done = backup();
    assert_eq!(done["state"], "ok", "{done}");
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    assert_eq!(snaps[0]["id"], done["report"]["snapshot"]);
    let check = env.run(&["check", "--read-data"]);
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
}
