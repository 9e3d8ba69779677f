//! Point-in-time recovery of MongoDB collections from the oplog (`repo mongodb follow`,
//! `coverage`, `restore --at`), against a real server with an oplog (SecantusDB; see
//! tests/cli/mongodb.rs). Without a server these tests print why and pass.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mongodb::bson::{doc, Document, RawDocumentBuf, Timestamp};
use mongodb::sync::{Client, Database};

use crate::common::{mongo_server as server, unique_db, Env};

/// A database's state: per collection (sorted), its documents' raw bytes in `_id` order
/// and its index names.
pub(crate) type State = Vec<(String, Vec<Vec<u8>>, Vec<String>)>;

pub(crate) fn state(db: &Database) -> State {
    let mut names = db.list_collection_names().run().unwrap();
    names.sort();
    names
        .into_iter()
        .map(|c| {
            let docs = db
                .collection::<RawDocumentBuf>(&c)
                .find(doc! {})
                .sort(doc! {"_id": 1})
                .run()
                .unwrap()
                .map(|d| d.unwrap().into_bytes())
                .collect();
            let mut idx: Vec<String> = db
                .collection::<Document>(&c)
                .list_index_names()
                .run()
                .unwrap();
            idx.sort();
            (c, docs, idx)
        })
        .collect()
}

pub(crate) fn follow(env: &Env, uri: &str, db: &str) -> Child {
    spawn_follow(env, uri, &["--db", db])
}

/// `follow` of every database.
pub(crate) fn follow_all(env: &Env, uri: &str) -> Child {
    spawn_follow(env, uri, &[])
}

fn spawn_follow(env: &Env, uri: &str, extra: &[&str]) -> Child {
    let mut args = vec![
        "mongodb",
        "follow",
        "--mongodb-uri",
        uri,
        "--seal-interval",
        "1s",
        "--poll",
        "200ms",
        "--json",
    ];
    args.extend_from_slice(extra);
    env.cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start follow")
}

/// `restore --at AT --mongodb-uri URI EXTRA...`, which must succeed.
pub(crate) fn restore_at(env: &Env, at: &str, uri: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["restore", "--at", at, "--mongodb-uri", uri];
    args.extend_from_slice(extra);
    env.json(&args)
}

/// The same, for restores that may be refused.
pub(crate) fn try_restore_at(env: &Env, at: &str, uri: &str, extra: &[&str]) -> Output {
    let mut args = vec!["restore", "--at", at, "--mongodb-uri", uri];
    args.extend_from_slice(extra);
    env.run(&args)
}

/// Stops `follow` with SIGTERM (it seals what it read) and returns the sealed slices.
pub(crate) fn stop(child: Child) -> Vec<serde_json::Value> {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "follow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    slices(&out.stdout)
}

fn slices(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one slice per line"))
        .collect()
}

/// Waits past the current second so the next step happens at a later oplog second.
pub(crate) fn tick() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// Oplog entries of `db` after `after` (what `follow` must capture exactly once).
fn oplog_entries(client: &Client, db: &str, after: Timestamp) -> u64 {
    let prefix = format!("^{db}\\.");
    client
        .database("local")
        .collection::<Document>("oplog.rs")
        .count_documents(doc! {"ts": {"$gt": after}, "ns": {"$regex": prefix}, "op": {"$ne": "n"}})
        .run()
        .unwrap()
}

pub(crate) fn cluster_time(snapshot: &serde_json::Value) -> Timestamp {
    let ct = &snapshot["mongodb"]["cluster_time"];
    Timestamp {
        time: ct["t"].as_u64().unwrap() as u32,
        increment: ct["i"].as_u64().unwrap() as u32,
    }
}

#[test]
fn restore_at_any_second_between_steps_with_follow_restarted() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("pitr");
    let db = client.database(&name);
    let users = db.collection::<Document>("users");
    let events = db.collection::<Document>("events");
    users
        .insert_many((0..40).map(|i| {
            doc! {"_id": i, "name": format!("u{i}"), "tags": ["a", "b"], "n": i,
            "addr": {"city": "x", "zip": i * 10}}
        }))
        .run()
        .unwrap();
    events
        .insert_many((0..10).map(|i| doc! {"_id": i, "kind": "old"}))
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    let dbarg = format!("--db={name}");
    let snap = env.json(&["snapshot", &uri, &dbarg]);
    let base = cluster_time(&snap);
    let mut f = follow(&env, &uri, &name);
    let mut captured = Vec::new();
    let mut points: Vec<(String, State)> = Vec::new();
    let mark = |points: &mut Vec<(String, State)>| {
        tick();
        points.push((chrono::Utc::now().to_rfc3339(), state(&db)));
        tick();
    };
    mark(&mut points);

    // Step 1: field sets and unsets, array changes, deletes, inserts.
    users
        .update_many(
            doc! {"_id": {"$lt": 10}},
            doc! {"$set": {"addr.city": "y", "new": true}},
        )
        .run()
        .unwrap();
    users
        .update_many(
            doc! {"_id": {"$gte": 30}},
            doc! {"$unset": {"tags": ""}, "$inc": {"n": 5}},
        )
        .run()
        .unwrap();
    users
        .update_one(
            doc! {"_id": 11},
            doc! {"$push": {"tags": {"$each": ["c", "d"]}}},
        )
        .run()
        .unwrap();
    users
        .update_one(doc! {"_id": 12}, doc! {"$pop": {"tags": 1}})
        .run()
        .unwrap();
    users
        .update_one(
            doc! {"_id": 13},
            doc! {"$set": {"tags.0": "z", "tags.3": "far"}},
        )
        .run()
        .unwrap();
    users
        .delete_many(doc! {"_id": {"$in": [20, 21, 22]}})
        .run()
        .unwrap();
    users
        .insert_one(doc! {"_id": 100, "name": "late"})
        .run()
        .unwrap();
    mark(&mut points);

    // follow is killed hard and restarted: what it had not sealed is read again.
    f.kill().unwrap();
    let out = f.wait_with_output().unwrap();
    captured.extend(slices(&out.stdout));
    let f = follow(&env, &uri, &name);

    // Step 2: index builds, a replacement, a rename of a field, then a drop and
    // re-create of a collection with new content.
    users
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"name": 1})
                .build(),
        )
        .run()
        .unwrap();
    // On an array field: the server's oplog entry marks it multikey, a catalog field
    // createIndexes refuses, so the replay must leave it out.
    users
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"tags": 1})
                .build(),
        )
        .run()
        .unwrap();
    users
        .replace_one(doc! {"_id": 14}, doc! {"whole": "new", "k": [1, 2]})
        .run()
        .unwrap();
    users
        .update_one(doc! {"_id": 15}, doc! {"$rename": {"name": "label"}})
        .run()
        .unwrap();
    events.drop().run().unwrap();
    events
        .insert_many((0..5).map(|i| doc! {"_id": i, "kind": "new", "v": i}))
        .run()
        .unwrap();
    mark(&mut points);

    // Step 3: more changes on top, including a collection created after the snapshot.
    users
        .update_many(doc! {}, doc! {"$set": {"gen": 3}})
        .run()
        .unwrap();
    db.collection::<Document>("fresh")
        .insert_one(doc! {"_id": "a", "x": 1})
        .run()
        .unwrap();
    users.drop_index("name_1").run().unwrap();
    client
        .database("admin")
        .run_command(
            doc! {"renameCollection": format!("{name}.fresh"), "to": format!("{name}.renamed")},
        )
        .run()
        .unwrap();
    db.run_command(doc! {"collMod": "events", "validator": {"v": {"$exists": true}}})
        .run()
        .unwrap();
    mark(&mut points);
    captured.extend(stop(f));

    // Every entry after the snapshot was captured exactly once across the two runs.
    let total: u64 = captured
        .iter()
        .map(|s| s["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(total, oplog_entries(&client, &name, base), "{captured:?}");
    let cov = env.json(&["mongodb", "coverage"]);
    let cov = &cov.as_array().unwrap()[0];
    assert_eq!(cov["ranges"].as_array().unwrap().len(), 1, "{cov}");
    assert!(cov["gaps"].as_array().unwrap().is_empty(), "{cov}");

    for (k, (at, want)) in points.iter().enumerate() {
        let target = format!("{name}_r{k}");
        let rename = format!("{name}.*:{target}.*");
        restore_at(&env, at, &uri, &["--ns-rename", &rename]);
        let got = state(&client.database(&target));
        assert_eq!(got.len(), want.len(), "collections at point {k} ({at})");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0, "point {k}");
            assert_eq!(g.2, w.2, "indexes of {} at point {k}", g.0);
            assert!(
                g.1 == w.1,
                "documents of {} differ at point {k} ({at})",
                g.0
            );
        }
        client.database(&target).drop().run().unwrap();
    }

    // A newer snapshot, changes after it, captured once more.
    env.json(&["snapshot", &uri, &dbarg]);
    tick();
    users
        .update_many(
            doc! {"_id": {"$lt": 5}},
            doc! {"$set": {"after": "second snapshot"}},
        )
        .run()
        .unwrap();
    tick();
    let last_at = chrono::Utc::now().to_rfc3339();
    let last = state(&db);
    env.ok(&[
        "mongodb",
        "follow",
        "--mongodb-uri",
        &uri,
        "--db",
        &name,
        "--once",
    ]);
    // Slices only the forgotten snapshot could use go; prune keeps the others' chunks.
    let forgot = env.json(&["forget", "--keep-last", "1", "--prune"]);
    assert!(
        forgot["oplog_slices_removed"].as_u64().unwrap_or(0) >= 1,
        "{forgot}"
    );
    env.ok(&["check", "--read-data"]);
    let target = format!("{name}_final");
    restore_at(
        &env,
        &last_at,
        &uri,
        &["--ns-rename", &format!("{name}.*:{target}.*")],
    );
    assert!(state(&client.database(&target)) == last);
    // Before the kept snapshot nothing is restorable any more: refused, nothing written.
    let gone = format!("{name}.*:{name}_gone.*");
    let out = try_restore_at(&env, &points[0].0, &uri, &["--ns-rename", &gone]);
    assert!(!out.status.success());
    assert!(state(&client.database(&format!("{name}_gone"))).is_empty());
    client.database(&target).drop().run().unwrap();
    db.drop().run().unwrap();
}

/// A private server whose oplog keeps only `entries` entries; restartable on its port
/// and data.
pub(crate) struct Private {
    child: Child,
    pub(crate) uri: String,
    build: Build,
    bin: String,
    port: u16,
    entries: u32,
    dir: tempfile::TempDir,
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Private {
    fn spawn(build: Build, bin: &str, dir: &std::path::Path, port: u16, entries: u32) -> Child {
        let mut c = Command::new(bin);
        if let Build::Python = build {
            // `configureFailPoint`, to make the server fail chosen commands.
            c.arg("--enable-test-commands");
        }
        let child = c
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(dir.join("data"))
            .args(["--oplog-max-entries", &entries.to_string()])
            .args(["--oplog-retention-seconds", "86400"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    }

    /// Stops the server (SIGTERM: a clean close) and starts it again on the same data.
    fn restart_after(&mut self, down: Duration) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        self.child.wait().unwrap();
        std::thread::sleep(down);
        self.child = Self::spawn(
            self.build,
            &self.bin,
            self.dir.path(),
            self.port,
            self.entries,
        );
    }
}

pub(crate) fn private_server(entries: u32) -> Option<Private> {
    private_server_of(Build::Python, entries)
}

/// The SecantusDB builds the tests run against: the Python one (the shared server's), and
/// the Rust one, whose oplog queries differ (it returns its oplog oldest first whatever the
/// sort asks).
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Build {
    Python,
    Rust,
}

/// Runs `test` against a private server of the Rust build (with room for a million oplog
/// entries).
pub(crate) fn on_rust_server(test: impl FnOnce(&str, &Client)) {
    if let Some(p) = private_server_of(Build::Rust, 1_000_000) {
        test(&p.uri, &Client::with_uri_str(&p.uri).unwrap());
    }
}

pub(crate) fn private_server_of(build: Build, entries: u32) -> Option<Private> {
    let bin = crate::common::service(match build {
        Build::Python => "REPO_TEST_SECANTUSD",
        Build::Rust => "REPO_TEST_SECANTUSD_RS",
    })?;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Private::spawn(build, &bin, dir.path(), port, entries);
    Some(Private {
        child,
        build,
        uri: crate::common::patient(&format!(
            "mongodb://127.0.0.1:{port}/?directConnection=true"
        )),
        bin,
        port,
        entries,
        dir,
    })
}

/// The opening of the rolled-over-oplog tests: a private server whose oplog keeps
/// `entries` entries, `app.c` holding `{_id: 0}` in a snapshot of `app`, then a tick and
/// `{_id: 1}` written after it.
pub(crate) fn written_after_a_snapshot(entries: u32) -> Option<(Private, Client, Env)> {
    written_after_a_snapshot_of(Build::Python, entries)
}

pub(crate) fn written_after_a_snapshot_of(
    build: Build,
    entries: u32,
) -> Option<(Private, Client, Env)> {
    let p = private_server_of(build, entries)?;
    let client = Client::with_uri_str(&p.uri).unwrap();
    let c = client.database("app").collection::<Document>("c");
    c.insert_one(doc! {"_id": 0}).run().unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &p.uri, "--db=app"]);
    tick();
    c.insert_one(doc! {"_id": 1}).run().unwrap();
    Some((p, client, env))
}

/// Trims the private server's oplog to its cap now (SecantusDB does it every few hundred
/// writes; mongod as it goes).
pub(crate) fn prune_oplog(client: &Client) {
    client
        .database("admin")
        .run_command(doc! {"secantusAdmin.pruneOplog": 1})
        .run()
        .unwrap();
}

#[test]
fn follow_rides_out_a_server_restart_without_losing_entries() {
    let Some(mut p) = private_server(100_000) else {
        return;
    };
    let insert = |p: &Private, ids: std::ops::Range<i32>| {
        let client = Client::with_uri_str(&p.uri).unwrap();
        let c = client.database("app").collection::<Document>("c");
        for i in ids {
            c.insert_one(doc! {"_id": i}).run().unwrap();
        }
    };
    insert(&p, 0..1);
    let env = Env::new();
    env.init();
    let snap = env.json(&["snapshot", &p.uri, "--db=app"]);
    let base = cluster_time(&snap);
    // A short server selection timeout makes the outage an error `follow` must ride out;
    // with the driver's default (30 s) an idle poll would just wait for the server.
    let follow_uri = format!("{}&serverSelectionTimeoutMS=300", p.uri);
    let f = follow(&env, &follow_uri, "app");
    insert(&p, 1..6);
    tick();
    // Down for a few seconds: follow warns and keeps what it read.
    p.restart_after(Duration::from_secs(3));
    insert(&p, 6..11);
    tick();
    tick();
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    let pid = f.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let out = f.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("retrying"), "{err}");
    let total: u64 = slices(&out.stdout)
        .iter()
        .map(|s| s["entries"].as_u64().unwrap())
        .sum();
    let client = Client::with_uri_str(&p.uri).unwrap();
    assert_eq!(total, oplog_entries(&client, "app", base));
    restore_at(&env, &at, &p.uri, &["--ns-rename", "app.*:back.*"]);
    let n = client
        .database("back")
        .collection::<Document>("c")
        .count_documents(doc! {})
        .run()
        .unwrap();
    assert_eq!(n, 11);
}

#[test]
fn oplog_rolled_over_while_follow_was_down_is_a_reported_gap() {
    let Some((p, client, env)) = written_after_a_snapshot(30) else {
        return;
    };
    let c = client.database("app").collection::<Document>("c");
    c.insert_one(doc! {"_id": "1b"}).run().unwrap();
    // The exact oplog timestamp of the first of the two inserts, as coverage prints it.
    let entry = client
        .database("local")
        .collection::<Document>("oplog.rs")
        .find_one(doc! {"ns": "app.c", "o._id": 1})
        .run()
        .unwrap()
        .unwrap();
    let ts = entry.get_timestamp("ts").unwrap();
    let exact = format!(
        "{} #{}",
        chrono::DateTime::from_timestamp(i64::from(ts.time), 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ"),
        ts.increment
    );
    let covered = chrono::Utc::now().to_rfc3339();
    env.ok(&[
        "mongodb",
        "follow",
        "--mongodb-uri",
        &p.uri,
        "--db",
        "app",
        "--once",
    ]);
    tick();
    // follow is down while 100 writes push everything it has not read out of the oplog.
    for i in 2..102 {
        c.insert_one(doc! {"_id": i}).run().unwrap();
    }
    prune_oplog(&client);
    let lost = chrono::Utc::now().to_rfc3339();
    tick();
    let out = env.run(&[
        "mongodb",
        "follow",
        "--mongodb-uri",
        &p.uri,
        "--db",
        "app",
        "--once",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("were lost"), "{err}");
    let text = env.ok(&["mongodb", "coverage", "--mongodb-uri-source", &p.uri]);
    assert!(text.contains("GAP"), "{text}");

    // Inside the gap: refused, naming the nearest restorable moments; nothing written.
    let out = try_restore_at(&env, &lost, &p.uri, &["--ns-rename", "app.*:gap.*"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not restorable") && err.contains("latest before"),
        "{err}"
    );
    assert!(!client
        .list_database_names()
        .run()
        .unwrap()
        .contains(&"gap".to_string()));
    // Before the gap: restorable exactly.
    restore_at(&env, &covered, &p.uri, &["--ns-rename", "app.*:before.*"]);
    let count = |db: &str| {
        client
            .database(db)
            .collection::<Document>("c")
            .count_documents(doc! {})
            .run()
            .unwrap()
    };
    assert_eq!(count("before"), 3);
    // At an exact oplog timestamp: the entry itself included, the next one not.
    restore_at(&env, &exact, &p.uri, &["--ns-rename", "app.*:exact.*"]);
    assert_eq!(count("exact"), 2, "{exact}");
}

#[test]
fn entries_replay_cannot_reproduce_stop_with_a_clear_message() {
    use repo::mongo::oplog::replay::{Replayer, Selection};
    let Some((_, client)) = server() else {
        return;
    };
    let name = unique_db("unsup");
    let db = client.database(&name);
    db.collection::<Document>("c")
        .insert_one(doc! {"_id": 1, "a": 1})
        .run()
        .unwrap();
    let sel = Selection {
        saved: Default::default(),
        whole_dbs: [name.clone()].into_iter().collect(),
        all_dbs: false,
        globs: Vec::new(),
        renames: Default::default(),
    };
    let ts = Timestamp {
        time: 1_800_000_000,
        increment: 1,
    };
    let run = |entry: Document| -> String {
        let raw = RawDocumentBuf::from_document(&entry).unwrap();
        let mut r = Replayer::new(&client, &sel, Default::default());
        let outcome = r.apply(&raw).and_then(|()| r.finish().map(|_| ()));
        outcome.expect_err("must refuse").to_string()
    };
    let cmd_ns = format!("{name}.$cmd");
    let err = run(doc! {"ts": ts, "op": "c", "ns": &cmd_ns,
    "o": {"convertToCapped": "c", "size": 4096}});
    assert!(
        err.contains("cannot be replayed") && err.contains("convertToCapped"),
        "{err}"
    );
    // An update of a document that is not there: the base and the oplog disagree.
    let err = run(
        doc! {"ts": ts, "op": "u", "ns": format!("{name}.c"), "o2": {"_id": 99},
        "o": {"$v": 2, "diff": {"u": {"a": 2}}}},
    );
    assert!(err.contains("does not exist"), "{err}");
    // An update operator the oplog never holds.
    let err = run(
        doc! {"ts": ts, "op": "u", "ns": format!("{name}.c"), "o2": {"_id": 1},
        "o": {"$inc": {"a": 1}}},
    );
    assert!(err.contains("unsupported modifier"), "{err}");
    // Nothing was changed by the refused entries.
    let d = db
        .collection::<Document>("c")
        .find_one(doc! {"_id": 1})
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(d, doc! {"_id": 1, "a": 1});
    db.drop().run().unwrap();
}
