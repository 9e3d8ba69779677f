//! A snapshot takes the MongoDB collections no oplog entry touched since its parent from
//! the parent, unread (src/mongo/export/reuse/) — and must never take a written one.
//! Each step below changes the database another way (document writes in and out of
//! `follow`'s slices, renames within and across databases, a drop and re-create, an index,
//! a transaction, a capped insert); after each, the snapshot restored must equal the live
//! databases, and the report must say exactly how many collections were taken unread.
//! Against private SecantusDB servers (a real oplog; one with room for 30 entries).

use std::process::Output;

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Client;

use crate::common::{odd_users, tree_of, Env};
use crate::mongodb_pitr::{
    private_server_of, prune_oplog, state, tick, written_after_a_snapshot_of, Build,
};

/// `(unwritten, total, slices read)` from the report's note, if it has one.
fn taken(stderr: &str) -> Option<(u64, u64, u64)> {
    let line = stderr
        .lines()
        .find(|l| l.contains("unwritten since snapshot"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = |w: &str| words.iter().position(|x| *x == w);
    let num = |i: usize| {
        words[i]
            .trim_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    };
    let of = at("of")?;
    let slices = at("slice(s),")?;
    Some((num(of - 1)?, num(of + 1)?, num(slices - 1)?))
}

struct Snap {
    id: String,
    json: serde_json::Value,
    stderr: String,
}

/// How the server's part of the oplog since the parent is read.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Via {
    /// The change stream resumed at the parent's position (the default).
    Stream,
    /// The oplog itself (the stream left out with a failpoint).
    Oplog,
}

fn snapshot_via(env: &Env, uri: &str, extra: &[&str], via: Via) -> Snap {
    let mut args = vec!["snapshot", uri, "--db=app", "--db=side", "--json"];
    args.extend_from_slice(extra);
    let mut cmd = env.cmd(&args);
    if via == Via::Oplog {
        cmd.env("REPO_FAILPOINT", "mongodb-change-stream:skip");
    }
    let out: Output = cmd.output().expect("run repo");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "snapshot failed: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Snap {
        id: json["id"].as_str().unwrap().to_string(),
        json,
        stderr,
    }
}

/// Restores `snap` beside the live databases and checks it equals them.
fn restores_as_live(env: &Env, client: &Client, uri: &str, snap: &Snap, step: &str) {
    let (app, side) = (format!("{step}_app"), format!("{step}_side"));
    env.ok(&[
        "restore",
        &snap.id,
        "--mongodb-uri",
        uri,
        "--ns",
        "app.*",
        "--ns",
        "side.*",
        "--ns-rename",
        &format!("app.*:{app}.*"),
        "--ns-rename",
        &format!("side.*:{side}.*"),
    ]);
    for (live, copy) in [("app", &app), ("side", &side)] {
        assert_eq!(
            state(&client.database(live)),
            state(&client.database(copy)),
            "step {step}: {live} restored from {} differs from the live database\n{}",
            snap.id,
            snap.stderr
        );
        client.database(copy).drop().run().unwrap();
    }
}

fn follow_once(env: &Env, uri: &str) {
    env.ok(&["mongodb", "follow", "--mongodb-uri", uri, "--once"]);
}

fn fill(client: &Client, db: &str, coll: &str, n: i32, tag: &str) {
    let docs: Vec<Document> = (0..n).map(|i| doc! {"_id": i, "tag": tag}).collect();
    let c = client.database(db).collection::<Document>(coll);
    c.insert_many(docs).run().unwrap();
}

#[test]
fn unwritten_collections_come_from_the_parent_and_every_write_is_seen() {
    every_write_is_seen(Build::Python, Via::Stream);
}

#[test]
fn every_write_is_seen_in_the_oplog_when_no_change_stream_answers() {
    every_write_is_seen(Build::Python, Via::Oplog);
}

/// The Rust SecantusDB answers a backward read of its oplog oldest first: taken for newest
/// first, its oldest entry, before the parent's time, would say nothing was written since.
#[test]
fn every_write_is_seen_on_a_server_that_reads_its_oplog_only_forwards() {
    every_write_is_seen(Build::Rust, Via::Oplog);
}

/// The Rust SecantusDB scans its whole oplog for any query on it, but seeks it for a
/// change stream: the snapshot resumes the stream where the parent's opened.
#[test]
fn every_write_is_seen_in_the_change_stream() {
    every_write_is_seen(Build::Rust, Via::Stream);
}

/// `(unwritten, total, slices)` of a snapshot's note, checking the server's part was read
/// the way asked.
fn taken_via(s: &Snap, via: Via) -> (u64, u64, u64) {
    let taken = taken(&s.stderr).unwrap_or_else(|| panic!("no note: {}", s.stderr));
    let streamed = s.stderr.contains("from the server's change stream)");
    assert_eq!(streamed, via == Via::Stream, "{}", s.stderr);
    taken
}

fn every_write_is_seen(build: Build, via: Via) {
    let Some(p) = private_server_of(build, 1_000_000) else {
        return;
    };
    let (uri, client) = (p.uri.clone(), Client::with_uri_str(&p.uri).unwrap());
    let app = client.database("app");
    odd_users(&client, "app", 40);
    for (coll, n) in [("orders", 300), ("a.b", 50), ("ren_src", 20)] {
        fill(&client, "app", coll, n, "v1");
    }
    for (coll, n) in [("recreated", 20), ("idx", 20), ("txn_a", 10)] {
        fill(&client, "app", coll, n, "v1");
    }
    app.create_collection("capped")
        .capped(true)
        .size(1 << 16)
        .run()
        .unwrap();
    fill(&client, "app", "capped", 10, "v1");
    fill(&client, "side", "s1", 10, "v1");
    fill(&client, "side", "s2", 10, "v1");
    let env = Env::new();
    env.init();
    let first = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken(&first.stderr), None, "{}", first.stderr);

    // Nothing written: every collection is taken, only the metadata is read.
    tick();
    let s = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken_via(&s, via), (10, 10, 0), "{}", s.stderr);
    assert_eq!(s.json["summary"]["files_unchanged"], 10);
    assert!(s.json["summary"]["bytes_read"].as_u64().unwrap() < 20_000);
    // Nor is anything stored again for them: each collection's directory is the parent's.
    for coll in ["orders", "a.b", "capped", "odd name.users"] {
        let dir = std::path::PathBuf::from(format!("/mongodb/app/{coll}"));
        let (a, b) = (first.json["id"].as_str(), s.json["id"].as_str());
        assert_eq!(
            tree_of(&env, a.unwrap(), &dir),
            tree_of(&env, b.unwrap(), &dir),
            "{coll}"
        );
    }
    restores_as_live(&env, &client, &uri, &s, "none");

    // One update, read from the server's oplog.
    let users = app.collection::<Document>("odd name.users");
    users
        .update_one(doc! {"_id": 7}, doc! {"$set": {"text": "changed"}})
        .run()
        .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken_via(&s, via), (9, 10, 0), "{}", s.stderr);
    restores_as_live(&env, &client, &uri, &s, "update");

    // A delete and an insert captured by `follow` in slices, then the server's tail.
    follow_once(&env, &uri);
    let orders = app.collection::<Document>("orders");
    orders.delete_one(doc! {"_id": 3}).run().unwrap();
    follow_once(&env, &uri);
    let ab = app.collection::<Document>("a.b");
    ab.insert_one(doc! {"_id": "new"}).run().unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    let (unwritten, total, slices) = taken_via(&s, via);
    assert_eq!((unwritten, total), (8, 10), "{}", s.stderr);
    assert!(slices >= 1, "{}", s.stderr);
    restores_as_live(&env, &client, &uri, &s, "slices");

    // A rename: its whole database is read again, the other database is not.
    client
        .database("admin")
        .run_command(doc! {"renameCollection": "app.ren_src", "to": "app.ren_dst"})
        .run()
        .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken_via(&s, via), (2, 10, 0), "{}", s.stderr);
    restores_as_live(&env, &client, &uri, &s, "rename");

    // Dropped and created again under the same name, with as many documents.
    app.collection::<Document>("recreated")
        .drop()
        .run()
        .unwrap();
    fill(&client, "app", "recreated", 20, "v2");
    let s = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken_via(&s, via), (2, 10, 0), "{}", s.stderr);
    restores_as_live(&env, &client, &uri, &s, "recreate");

    // A new index, no document written.
    app.collection::<Document>("idx")
        .create_index(mongodb::IndexModel::builder().keys(doc! {"tag": 1}).build())
        .run()
        .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken_via(&s, via), (2, 10, 0), "{}", s.stderr);
    restores_as_live(&env, &client, &uri, &s, "index");

    // A transaction over both databases.
    let mut session = client.start_session().run().unwrap();
    session.start_transaction().run().unwrap();
    app.collection::<Document>("txn_a")
        .insert_one(doc! {"_id": 100})
        .session(&mut session)
        .run()
        .unwrap();
    client
        .database("side")
        .collection::<Document>("s1")
        .update_one(doc! {"_id": 1}, doc! {"$set": {"tag": "txn"}})
        .session(&mut session)
        .run()
        .unwrap();
    session.commit_transaction().run().unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken_via(&s, via), (8, 10, 0), "{}", s.stderr);
    restores_as_live(&env, &client, &uri, &s, "txn");

    // A capped insert (which may evict), then a rename across databases over `idx`.
    app.collection::<Document>("capped")
        .insert_one(doc! {"_id": 1000, "tag": "v2"})
        .run()
        .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    assert_eq!(taken_via(&s, via), (9, 10, 0), "{}", s.stderr);
    client
        .database("admin")
        .run_command(doc! {"renameCollection": "side.s2", "to": "app.idx", "dropTarget": true})
        .run()
        .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    assert!(
        s.stderr.contains("every collection was written"),
        "{}",
        s.stderr
    );
    assert_eq!(s.json["summary"]["files_unchanged"], 0);
    restores_as_live(&env, &client, &uri, &s, "xrename");

    // Stored functions: never taken unread on a change stream's word, since mongod's
    // streams leave `system.*` collections out.
    let js = app.collection::<Document>("system.js");
    js.insert_one(
        doc! {"_id": "f", "value": Bson::JavaScriptCode("function() { return 1; }".into())},
    )
    .run()
    .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    restores_as_live(&env, &client, &uri, &s, "js_new");
    let s = snapshot_via(&env, &uri, &[], via);
    let (unwritten, total, _) = taken_via(&s, via);
    let js_read = if via == Via::Stream { 1 } else { 0 };
    assert_eq!(unwritten, total - js_read, "{}", s.stderr);
    js.update_one(
        doc! {"_id": "f"},
        doc! {"$set": {"value": Bson::JavaScriptCode("function() { return 2; }".into())}},
    )
    .run()
    .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    // A write to a `system.*` collection touches its database: only side.s1 is taken.
    assert_eq!(taken_via(&s, via).0, 1, "{}", s.stderr);
    restores_as_live(&env, &client, &uri, &s, "js_changed");

    // A long run of writes secantusd-rs's cluster-wide streams do not show (the `admin`
    // database), then one they do: the server answers empty batches while it passes over
    // them, and the stream must be read to the oplog's end, not to its first empty batch.
    if (build, via) == (Build::Rust, Via::Stream) {
        let hidden: Vec<Document> = (0..100_000).map(|i| doc! {"_id": i}).collect();
        client
            .database("admin")
            .collection::<Document>("repo_test_noise")
            .insert_many(hidden)
            .run()
            .unwrap();
        orders
            .update_one(doc! {"_id": 4}, doc! {"$set": {"tag": "after-admin"}})
            .run()
            .unwrap();
        let s = snapshot_via(&env, &uri, &[], via);
        let (unwritten, total, _) = taken_via(&s, via);
        assert_eq!(unwritten, total - 1 - js_read, "{}", s.stderr);
        restores_as_live(&env, &client, &uri, &s, "after_admin");
    }

    // More oplog than reading the collections would cost (as entries, or as change events
    // of some 300 bytes each): everything is read.
    let noise: Vec<Document> = (0..6000)
        .map(|i| doc! {"_id": i, "pad": "x".repeat(1000)})
        .collect();
    client
        .database("noise")
        .collection::<Document>("n")
        .insert_many(noise)
        .run()
        .unwrap();
    let s = snapshot_via(&env, &uri, &[], via);
    assert!(
        s.stderr
            .contains("every collection is read: the oplog since the parent snapshot is larger"),
        "{}",
        s.stderr
    );
    assert_eq!(s.json["summary"]["files_unchanged"], 0);
    // `--force-full` never takes anything from a parent.
    let s = snapshot_via(&env, &uri, &["--force-full"], via);
    assert_eq!(taken(&s.stderr), None, "{}", s.stderr);
    assert_eq!(s.json["summary"]["files_new"], 20);
    restores_as_live(&env, &client, &uri, &s, "full");
    env.ok(&["check", "--read-data"]);
}

#[test]
fn an_oplog_that_rolled_over_means_reading_everything() {
    rolled_over(Build::Python);
}

/// The parent's change-stream position is gone from the oplog too: the resumed stream is
/// refused (ChangeStreamHistoryLost), never started later, and the oplog read says why.
#[test]
fn a_change_stream_position_the_oplog_dropped_means_reading_everything() {
    rolled_over(Build::Rust);
}

fn rolled_over(build: Build) {
    let Some((p, client, env)) = written_after_a_snapshot_of(build, 30) else {
        return;
    };
    // Writes elsewhere push the insert out of the oplog.
    let noise = client.database("noise").collection::<Document>("n");
    for i in 0..100 {
        noise.insert_one(doc! {"_id": i}).run().unwrap();
    }
    prune_oplog(&client);
    let out = env.run(&["snapshot", &p.uri, "--db=app", "--json"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no longer reaches back"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["files_unchanged"], 0);
    env.ok(&[
        "restore",
        "latest",
        "--mongodb-uri",
        &p.uri,
        "--ns-rename",
        "app.*:back.*",
    ]);
    let back = client.database("back").collection::<Document>("c");
    assert_eq!(back.count_documents(doc! {}).run().unwrap(), 2);
}
