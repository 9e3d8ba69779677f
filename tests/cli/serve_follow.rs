//! `repo serve` follows the oplog of plans with `follow-oplog`: slices sealed as the
//! server changes, coverage in the API and metrics, a point-in-time restore through the
//! API to a moment after the last snapshot, and the follower sealed and logged on SIGTERM.

use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use serde_json::json;

use crate::common::{mongo_server, unique_db, Env};
use crate::serve_client::{config, token, Server};

#[test]
fn the_service_follows_the_oplog_and_restores_to_a_moment_through_the_api() {
    let (uri, client) = mongo_server().expect("REPO_TEST_MONGODB_URI");
    let db = unique_db("follow");
    let coll = client.database(&db).collection::<Document>("events");
    coll.insert_many((0..10).map(|i| doc! {"_id": i, "v": "base"}))
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    config(
        &env,
        &format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n\n[plans.db]\nrepository = \"main\"\nmongodb = {{ uri-env = \"APP_MONGODB_URI\", databases = [\"{db}\"] }}\nfollow-oplog = true\n\n[service]\nfollow-seal = \"1s\"\n",
            env.repo().display()
        ),
    );
    let op = token(&env, "op", "operator");
    // A connection string with credentials, which must never reach the service's log.
    let pw = "f0llow-s3cret-pw";
    client
        .database("admin")
        .run_command(doc! {"createUser": &db, "pwd": pw, "roles": ["root"]})
        .run()
        .expect("createUser");
    let uri = uri.replacen("mongodb://", &format!("mongodb://{db}:{pw}@"), 1);
    let srv = Server::start(&env, &[("APP_MONGODB_URI", &uri)]);
    let (s, job) = srv.call(
        "POST",
        "/api/backup/create",
        Some(&op),
        Some(&json!({"plan": "db"})),
    );
    assert_eq!(s, 202, "{job}");
    assert_eq!(
        srv.wait_job(job["id"].as_str().unwrap(), &op)["state"],
        "ok"
    );

    // After the snapshot: ten more documents, then one removed.
    coll.insert_many((10..20).map(|i| doc! {"_id": i, "v": "after"}))
        .run()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let wanted = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1500));
    coll.delete_one(doc! {"_id": 0}).run().unwrap();

    // Wait until the capture covers the moment.
    let start = Instant::now();
    let follow = loop {
        let plans = srv.get("/api/plans", &op);
        let f = plans[0]["follow"].clone();
        let covered = f["covered_until"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        // `behind_head_secs` is reported but not bounded here: with a database filter it
        // measures against the last entry of *that* database, so other tests' writes to
        // the shared server make it grow (a known defect, in the closing note).
        if f["state"] == "running"
            && covered.is_some_and(|c| c > wanted + chrono::Duration::seconds(2))
            && f["behind_head_secs"].is_u64()
        {
            break f;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never covered: {f}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(follow["slices"].as_u64().unwrap() >= 1, "{follow}");
    assert!(follow["server_time"].is_string(), "{follow}");
    let m = srv.call("GET", "/metrics", Some(&op), None).1;
    let m = m.as_str().unwrap();
    assert!(m.contains("repo_follow_up{plan=\"db\"} 1"), "{m}");
    assert!(
        m.contains("repo_follow_covered_until_timestamp_seconds{plan=\"db\"}"),
        "{m}"
    );
    assert!(
        m.contains("repo_follow_behind_head_seconds{plan=\"db\"}"),
        "{m}"
    );
    let lag: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("repo_follow_lag_seconds{plan=\"db\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no lag: {m}"));
    assert!(
        (0.0..30.0).contains(&lag),
        "lag against the server's clock: {lag}"
    );

    // Restore the state at that moment into another database: all twenty documents.
    let target = format!("{db}_at");
    let body = json!({
        "mongodb_plan": "db",
        "at": wanted.to_rfc3339(),
        "rename": format!("{db}.*:{target}.*"),
    });
    let (s, job) = srv.call("POST", "/api/recovery/restore", Some(&op), Some(&body));
    assert_eq!(s, 202, "{job}");
    let done = srv.wait_job(job["id"].as_str().unwrap(), &op);
    if done["state"] != "ok" {
        // Failed once under the full suite's load and never alone: say what the follower
        // reported and which slices the repository held, to tell a lost slice from a gap.
        panic!(
            "restore to {wanted} failed: {done}\nfollow state now: {}\nslices: {}",
            srv.get("/api/plans", &op)[0]["follow"],
            slices(&env)
        );
    }
    let n = client
        .database(&target)
        .collection::<Document>("events")
        .count_documents(doc! {})
        .run()
        .unwrap();
    assert_eq!(n, 20, "the state at {wanted}: {done}");

    let (code, log) = srv.stop();
    assert_eq!(code, Some(0), "{log}");
    let hist = env.json(&["history", "--kind", "follow"]);
    let rec = &hist.as_array().unwrap()[0];
    assert_eq!(rec["result"], "ok", "{hist}");
    assert!(rec["report"]["slices"].as_u64().unwrap() >= 1, "{rec}");
    assert!(!log.contains(pw), "no credentials in the service log");
    let hist_text = hist.to_string();
    assert!(
        !hist_text.contains(pw),
        "no credentials in the operation log"
    );
    let _ = client.database(&db).drop().run();
    let _ = client.database(&target).drop().run();
    let _ = client
        .database("admin")
        .run_command(doc! {"dropUser": &db})
        .run();
}

/// Each oplog slice in the repository: its range, server clock reading, databases.
fn slices(env: &Env) -> String {
    let r = env.library(&env.repo());
    let (slices, damaged) = repo::mongo::oplog::load_slices_and_damaged(&r).unwrap();
    let mut out: Vec<String> = slices
        .iter()
        .map(|s| {
            format!(
                "[{:?}, {:?}] wall {:?} dbs {:?} entries {} gap {:?}",
                s.after, s.until, s.until_wall, s.dbs, s.entries, s.gap
            )
        })
        .collect();
    out.extend(
        damaged
            .iter()
            .map(|(id, why)| format!("damaged {id:?}: {why}")),
    );
    out.join("\n")
}
