//! A snapshot of a database written while the snapshot reads it saves exactly the state
//! at its cluster time, whatever the server's snapshot reads do (SecantusDB answers them
//! with the present): the snapshot is held after its read time is fixed, documents are
//! inserted and deleted and a collection created, and what it saved, restored, must be
//! the database at its time — before the writes (a server that reads at that time), or
//! after them (read again, as the report says), never a mix.

use mongodb::bson::{doc, Document};
use mongodb::sync::Client;

use crate::common::{mongo_server as server, unique_db, Env, Paused};
use crate::mongodb_pitr::{cluster_time, on_rust_server, private_server, state};

#[test]
fn writes_during_a_snapshot_are_in_it_only_if_its_time_is_after_them() {
    let Some((uri, client)) = server() else {
        return;
    };
    writes_during_a_snapshot(&uri, &client);
}

/// The Rust SecantusDB answers a backward read of its oplog oldest first: the read-time
/// check must still see the writes.
#[test]
fn writes_during_a_snapshot_are_seen_on_a_server_that_reads_its_oplog_only_forwards() {
    on_rust_server(writes_during_a_snapshot);
}

/// The same with the oplog read instead of the change stream (the stream left out).
#[test]
fn writes_during_a_snapshot_are_seen_in_the_oplog_read() {
    if let Some((uri, client)) = server() {
        during(&uri, &client, Via::Oplog);
    }
    on_rust_server(|uri, client| during(uri, client, Via::Oplog));
}

/// How the oplog since the snapshot's time is read.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    /// The change stream, resumed where the snapshot's opened (the default).
    Stream,
    /// The oplog itself.
    Oplog,
}

/// `repo` with `args`, the change stream left out for [`Via::Oplog`].
fn repo_via(env: &Env, args: &[&str], via: Via) -> std::process::Command {
    let mut c = env.cmd(args);
    if via == Via::Oplog {
        c.env("REPO_FAILPOINT", "mongodb-change-stream:skip");
    }
    c
}

fn writes_during_a_snapshot(uri: &str, client: &Client) {
    during(uri, client, Via::Stream);
}

fn during(uri: &str, client: &Client, via: Via) {
    let uri = uri.to_string();
    let name = unique_db("during");
    let db = client.database(&name);
    let (a, b) = (
        db.collection::<Document>("a"),
        db.collection::<Document>("b"),
    );
    a.insert_many((0..200).map(|i| doc! {"_id": i, "v": "a"}))
        .run()
        .unwrap();
    b.insert_many((0..50).map(|i| doc! {"_id": i, "v": "b"}))
        .run()
        .unwrap();
    let before = state(&db);
    let env = Env::new();
    env.init();
    let dbarg = format!("--db={name}");
    let held = Paused::start(
        repo_via(&env, &["snapshot", &uri, &dbarg, "--json"], via),
        "mongodb-planned",
    );
    let mut s = client.start_session().run().unwrap();
    a.insert_many((200..220).map(|i| doc! {"_id": i, "v": "late"}))
        .session(&mut s)
        .run()
        .unwrap();
    let first = op_time(&mut s);
    b.delete_one(doc! {"_id": 3}).session(&mut s).run().unwrap();
    db.collection::<Document>("new")
        .insert_one(doc! {"_id": 1})
        .session(&mut s)
        .run()
        .unwrap();
    let last = op_time(&mut s);
    let after = state(&db);
    let out = held.finish();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "snapshot failed: {stderr}");
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = cluster_time(&snap);
    // The insert of 20 documents may be logged as several entries up to `first`.
    let want = if t >= last {
        assert!(stderr.contains("reading again"), "{stderr}");
        &after
    } else {
        assert!(
            t < first && !stderr.contains("reading again"),
            "the snapshot's time {t:?} falls among the writes ({first:?}..{last:?})"
        );
        &before
    };
    let copy = format!("{name}_r");
    restore_renamed(&env, &snap, &uri, &[name.as_str()]);
    assert!(
        state(&client.database(&copy)) == *want,
        "the snapshot at {t:?} restores another state\n{stderr}"
    );
    client.database(&copy).drop().run().unwrap();
    db.drop().run().unwrap();
}

/// Restores snapshot `snap` to `uri` with each database `d` of `dbs` renamed `d_r`.
fn restore_renamed(env: &Env, snap: &serde_json::Value, uri: &str, dbs: &[&str]) {
    let renames: Vec<String> = dbs.iter().map(|d| format!("{d}.*:{d}_r.*")).collect();
    let mut args = vec![
        "restore",
        snap["id"].as_str().unwrap(),
        "--mongodb-uri",
        uri,
    ];
    for r in &renames {
        args.extend(["--ns-rename", r.as_str()]);
    }
    env.ok(&args);
}

/// The time of the session's last operation.
fn op_time(s: &mut mongodb::sync::ClientSession) -> mongodb::bson::Timestamp {
    let inner: &mut mongodb::ClientSession = s.into();
    inner.operation_time().expect("an operation time")
}

/// A collection dropped after the read time, before its database is listed, is missing
/// from the listing though it existed at that time: the snapshot must not commit that as
/// the read time's state, even when every listed collection is unchanged and taken from
/// the parent (nothing read, so only the oplog across the listing shows the drop).
#[test]
fn a_collection_dropped_while_listing_is_caught_when_nothing_is_read() {
    let Some((uri, client)) = server() else {
        return;
    };
    dropped_while_listing(&uri, &client);
}

#[test]
fn a_drop_while_listing_is_caught_on_a_server_that_reads_its_oplog_only_forwards() {
    on_rust_server(dropped_while_listing);
}

#[test]
fn a_drop_while_listing_is_caught_in_the_oplog_read() {
    if let Some((uri, client)) = server() {
        dropped_via(&uri, &client, Via::Oplog);
    }
    on_rust_server(|uri, client| dropped_via(uri, client, Via::Oplog));
}

fn dropped_while_listing(uri: &str, client: &Client) {
    dropped_via(uri, client, Via::Stream);
}

fn dropped_via(uri: &str, client: &Client, via: Via) {
    let uri = uri.to_string();
    let (first, second) = (unique_db("listed"), unique_db("unlisted"));
    for (d, c) in [(&first, "a"), (&second, "b"), (&second, "c")] {
        client
            .database(d)
            .collection::<Document>(c)
            .insert_many((0..30).map(|i| doc! {"_id": i, "c": c}))
            .run()
            .unwrap();
    }
    let env = Env::new();
    env.init();
    let args = ["snapshot", &uri, "--db", &first, "--db", &second];
    env.ok(&[&args[..], &["--quiet"]].concat());
    // Held once the first database is listed, before the second is.
    let held = Paused::start(
        repo_via(&env, &[&args[..], &["--json"]].concat(), via),
        "mongodb-listed-db",
    );
    let mut s = client.start_session().run().unwrap();
    client
        .database(&second)
        .collection::<Document>("c")
        .drop()
        .session(&mut s)
        .run()
        .unwrap();
    let dropped = op_time(&mut s);
    let after = (
        state(&client.database(&first)),
        state(&client.database(&second)),
    );
    let out = held.finish();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "snapshot failed: {stderr}");
    // The first attempt took both listed collections from the parent, and the oplog
    // across the listing showed the drop; the next read after it.
    assert!(
        stderr.contains("2 of 2 collection(s) unwritten"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "the collections of database {second} changed while they were listed"
        )) && stderr.contains("reading again"),
        "{stderr}"
    );
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cluster_time(&snap) >= dropped, "{stderr}");
    restore_renamed(&env, &snap, &uri, &[first.as_str(), second.as_str()]);
    let restored = (
        state(&client.database(&format!("{first}_r"))),
        state(&client.database(&format!("{second}_r"))),
    );
    assert!(
        restored == after,
        "the snapshot restores another state\n{stderr}"
    );
    for d in [&first, &second] {
        client.database(d).drop().run().unwrap();
        client.database(&format!("{d}_r")).drop().run().unwrap();
    }
}

/// When the read-time check cannot read the oplog, only the server refusing this user the
/// right to (Unauthorized) lets its snapshot reads be trusted, with a note; a connection
/// lost while reading it proves nothing, so the snapshot fails and nothing is saved (the
/// server's own failpoint makes the oplog read fail, after a write made following the
/// read time means the oplog must be read).
#[test]
fn only_a_refused_oplog_read_is_trusted_a_lost_one_saves_nothing() {
    let Some(p) = private_server(100_000) else {
        return;
    };
    let client = Client::with_uri_str(&p.uri).unwrap();
    let db = client.database("app");
    db.collection::<Document>("c")
        .insert_many((0..100).map(|i| doc! {"_id": i, "v": "x"}))
        .run()
        .unwrap();
    let saved = state(&db);
    let env = Env::new();
    env.init();
    let admin = client.database("admin");
    let fail = |data: Option<Document>| {
        let cmd = match data {
            Some(data) => doc! {"configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": data},
            None => doc! {"configureFailPoint": "failCommand", "mode": "off"},
        };
        admin.run_command(cmd).run().unwrap();
    };
    let lost =
        doc! {"failCommands": ["find", "aggregate"], "closeConnection": true, "appName": "repo"};
    let refused = doc! {"failCommands": ["find", "aggregate"], "errorCode": 13, "appName": "repo"};
    for (data, trusted) in [(lost, false), (refused, true)] {
        let held = Paused::start(
            env.cmd(&["snapshot", &p.uri, "--db=app", "--json"]),
            "mongodb-confirm",
        );
        client
            .database("other")
            .collection::<Document>("x")
            .insert_one(doc! {"t": 1})
            .run()
            .unwrap();
        fail(Some(data));
        let out = held.finish();
        fail(None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let snapshots = env.json(&["snapshots"]).as_array().unwrap().len();
        if !trusted {
            assert!(
                !out.status.success(),
                "a lost oplog read was trusted: {stderr}"
            );
            assert!(stderr.contains("reading the oplog"), "{stderr}");
            assert_eq!(snapshots, 0, "a snapshot was saved: {stderr}");
            continue;
        }
        assert!(out.status.success(), "snapshot failed: {stderr}");
        assert!(stderr.contains("snapshot reads are trusted"), "{stderr}");
        assert_eq!(snapshots, 1);
        let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        restore_renamed(&env, &snap, &p.uri, &["app"]);
        assert!(state(&client.database("app_r")) == saved);
    }
}
