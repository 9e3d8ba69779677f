//! The dashboard in a real headless Chromium (Debian's package, driven by selenium from
//! PyPI; `scripts/test-tools` installs both): `tests/browser/dashboard.py` signs in, runs
//! a plan and watches it finish, sees a failing plan red with its error, filters and
//! browses snapshots, downloads a file, restores a directory through the preview, picks
//! a MongoDB moment on the timeline and restores it, and checks that a viewer cannot
//! restore and that pages fit a phone. This side prepares the data and the service and
//! verifies the results: downloaded bytes, restored files, restored documents.
//! Screenshots of every page are kept in `$CARGO_TARGET_TMPDIR/dashboard-screenshots`.

use std::process::Command;
use std::time::Duration;

use mongodb::bson::{doc, Document};

use crate::common::{assert_same_tree, mongo_server, service, unique_db, write_big_file, Env};
use crate::mongodb_pitr::{follow, stop, tick};
use crate::serve_client::{config, token, Server};

fn docs(client: &mongodb::sync::Client, db: &str) -> Vec<Document> {
    let mut v: Vec<Document> = client
        .database(db)
        .collection::<Document>("users")
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .run()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    v.sort_by_key(|d| d.get_i32("_id").unwrap());
    v
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let Some(python) = service("REPO_TEST_BROWSER_PYTHON") else {
        return;
    };
    let (Some(chromium), Some(driver)) = (
        service("REPO_TEST_CHROMIUM"),
        service("REPO_TEST_CHROMEDRIVER"),
    ) else {
        return;
    };
    let Some((uri, client)) = mongo_server() else {
        return;
    };
    let env = Env::new();
    env.init();

    // Files: nested directories, odd names, a multi-chunk binary file.
    let data = env.path("data");
    let docs_dir = data.join("projects/report ü");
    std::fs::create_dir_all(docs_dir.join("deep/er")).unwrap();
    write_big_file(&docs_dir.join("big.bin"), 3 << 20, 7);
    std::fs::write(docs_dir.join("notes & <b>.txt"), "hello\n").unwrap();
    std::fs::write(docs_dir.join("deep/er/x"), "x").unwrap();
    std::os::unix::fs::symlink("big.bin", docs_dir.join("link")).unwrap();
    std::fs::write(data.join("top.txt"), "top").unwrap();

    // MongoDB: a snapshot, then two batches a few seconds apart captured by follow.
    let name = unique_db("dash");
    let users = client.database(&name).collection::<Document>("users");
    users
        .insert_many((0..20).map(|i| doc! {"_id": i, "batch": 1, "name": format!("u{i}")}))
        .run()
        .unwrap();
    env.ok(&["snapshot", &uri, &format!("--db={name}")]);
    let f = follow(&env, &uri, &name);
    tick();
    users
        .insert_many((20..30).map(|i| doc! {"_id": i, "batch": 2}))
        .run()
        .unwrap();
    users
        .update_one(doc! {"_id": 0}, doc! {"$set": {"name": "changed"}})
        .run()
        .unwrap();
    tick();
    let pick_after = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(2500));
    let pick_before = chrono::Utc::now();
    tick();
    let expected = docs(&client, &name);
    users
        .insert_many((30..40).map(|i| doc! {"_id": i, "batch": 3}))
        .run()
        .unwrap();
    users.delete_one(doc! {"_id": 1}).run().unwrap();
    tick();
    tick();
    stop(f);

    let restores = env.path("restores");
    std::fs::create_dir_all(&restores).unwrap();
    config(
        &env,
        &format!(
            r#"[repositories.main]
location = "{repo}"
password-env = "REPO_PASSWORD"

[plans.files]
repository = "main"
paths = ["{data}"]

[plans.broken]
repository = "main"
paths = ["{missing}"]

[plans.db]
repository = "main"
mongodb = {{ uri-env = "APP_MONGODB_URI", databases = ["{name}"] }}

[service]
restore-roots = ["{restores}"]
"#,
            repo = env.repo().display(),
            data = data.display(),
            missing = env.path("gone").display(),
            restores = restores.display(),
        ),
    );
    // A check on record, for the Storage page's "latest check".
    env.ok(&["check"]);
    let op = token(&env, "hands", "operator");
    let viewer = token(&env, "eyes", "viewer");
    let srv = Server::start(&env, &[("APP_MONGODB_URI", &uri)]);

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let downloads = env.path("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browse = docs_dir.display().to_string();
    let target = restores.join("dir");
    let target_db = format!("{name}_r");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.py");
    let out = Command::new(&python)
        .arg(script)
        .env("BASE", &srv.base)
        .env("SHOTS", &shots)
        .env("DOWNLOADS", &downloads)
        .env("CHROMIUM", &chromium)
        .env("CHROMEDRIVER", &driver)
        .env("TOKEN_OPERATOR", &op)
        .env("TOKEN_VIEWER", &viewer)
        .env("BROKEN_PATH", env.path("gone"))
        .env("BROWSE", &browse)
        .env("DOWNLOAD", docs_dir.join("big.bin"))
        .env("RESTORE_TARGET", &target)
        .env("RESTORE_TARGET2", restores.join("other"))
        .env("RESTORE_FILES", "3")
        .env("PICK_AFTER", pick_after.to_rfc3339())
        .env("PICK_BEFORE", pick_before.to_rfc3339())
        .env("MONGO_DB", &name)
        .env("MONGO_TARGET_DB", &target_db)
        .output()
        .expect("run the browser test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stderr}\nservice log:\n{}",
        shots.display(),
        srv.log.lock().unwrap()
    );
    eprintln!("dashboard screenshots: {}", shots.display());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");

    // The download is the file, byte for byte.
    let got = std::fs::read(r["downloaded"].as_str().unwrap()).unwrap();
    assert!(
        got == std::fs::read(docs_dir.join("big.bin")).unwrap(),
        "downloaded bytes differ"
    );
    // The restored directory is the source directory.
    let restored = target.join(docs_dir.strip_prefix("/").unwrap());
    assert_same_tree(&docs_dir, &restored);
    // The restored collection is the state at the moment picked: batch 2 and the update
    // in, batch 3 and the delete out.
    assert_eq!(docs(&client, &target_db), expected, "at {}", r["mongo_at"]);
    let shots_taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(shots_taken >= 18, "{shots_taken} screenshots");

    let (code, log) = srv.stop();
    assert_eq!(code, Some(0), "{log}");
    for secret in [&op, &viewer] {
        assert!(!log.contains(secret.as_str()));
    }
    client.database(&name).drop().run().unwrap();
    client.database(&target_db).drop().run().unwrap();
}
