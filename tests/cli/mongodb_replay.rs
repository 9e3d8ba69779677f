//! Oplog replay keeps the order of writes: random sequences of inserts, updates,
//! replacements and deletes on a collection with a unique index are run against the real
//! server, their oplog entries replayed into an empty copy, and the result must equal
//! the live collection byte for byte. A private server keeps the oplog small, so that
//! reading it back stays quick.

use mongodb::bson::{doc, Document, RawDocumentBuf, Timestamp};
use mongodb::sync::{Client, Database};
use proptest::prelude::*;

use repo::mongo::ns::Renames;
use repo::mongo::oplog::replay::{Replayer, Selection};

use crate::common::unique_db;
use crate::mongodb_pitr::private_server;

#[derive(Clone, Debug)]
enum Op {
    Insert(i32, i32),
    SetCode(i32, i32),
    SetOther(i32, i32),
    Replace(i32, i32),
    Delete(i32),
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..5i32;
    let code = 0..4i32;
    prop_oneof![
        (id.clone(), code.clone()).prop_map(|(i, c)| Op::Insert(i, c)),
        (id.clone(), code.clone()).prop_map(|(i, c)| Op::SetCode(i, c)),
        (id.clone(), 0..100i32).prop_map(|(i, v)| Op::SetOther(i, v)),
        (id.clone(), code).prop_map(|(i, c)| Op::Replace(i, c)),
        id.prop_map(Op::Delete),
    ]
}

/// Runs one op live; returns whether it changed a document (refused ones — duplicates —
/// and misses leave no oplog entry).
fn run_live(db: &Database, op: &Op) -> bool {
    let c = db.collection::<Document>("c");
    let changed = |r: Result<mongodb::results::UpdateResult, mongodb::error::Error>| {
        r.is_ok_and(|r| r.modified_count > 0)
    };
    match op {
        Op::Insert(i, code) => c.insert_one(doc! {"_id": i, "code": code}).run().is_ok(),
        Op::SetCode(i, code) => changed(
            c.update_one(doc! {"_id": i}, doc! {"$set": {"code": code}})
                .run(),
        ),
        Op::SetOther(i, v) => changed(
            c.update_one(doc! {"_id": i}, doc! {"$set": {"other": v}})
                .run(),
        ),
        Op::Replace(i, code) => changed(
            c.replace_one(doc! {"_id": i}, doc! {"code": code, "replaced": true})
                .run(),
        ),
        Op::Delete(i) => c
            .delete_one(doc! {"_id": i})
            .run()
            .is_ok_and(|r| r.deleted_count > 0),
    }
}

fn newest_ts(client: &Client) -> Timestamp {
    client
        .database("local")
        .collection::<Document>("oplog.rs")
        .find_one(doc! {})
        .sort(doc! {"ts": -1})
        .run()
        .unwrap()
        .and_then(|d| d.get_timestamp("ts").ok())
        .unwrap_or(Timestamp {
            time: 0,
            increment: 0,
        })
}

fn raw_docs(db: &Database) -> Vec<Vec<u8>> {
    db.collection::<RawDocumentBuf>("c")
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .run()
        .unwrap()
        .map(|d| d.unwrap().into_bytes())
        .collect()
}

/// Runs `setup` on both sides (the snapshot's state), then `ops` live, replays their
/// oplog into the copy, and compares; returns the final documents.
fn check(client: &Client, setup: &[Op], ops: &[Op]) -> Vec<Vec<u8>> {
    let name = unique_db("replay");
    let target = format!("{name}_r");
    for d in [&name, &target] {
        let db = client.database(d);
        db.run_command(doc! {"create": "c"}).run().unwrap();
        db.run_command(doc! {"createIndexes": "c", "indexes": [
        {"key": {"code": 1}, "name": "code_1", "unique": true}]})
            .run()
            .unwrap();
    }
    for op in setup {
        assert!(run_live(&client.database(&name), op), "{op:?}");
        assert!(run_live(&client.database(&target), op), "{op:?}");
    }
    let start = newest_ts(client);
    let live = client.database(&name);
    let changes = ops.iter().filter(|op| run_live(&live, op)).count();
    let ns = format!("{name}.c");
    let entries: Vec<RawDocumentBuf> = client
        .database("local")
        .collection::<RawDocumentBuf>("oplog.rs")
        .find(doc! {"ns": &ns, "ts": {"$gt": start}})
        .sort(doc! {"ts": 1})
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    // One entry per change: the replay below is really fed what happened.
    assert_eq!(entries.len(), changes, "{ops:?}");
    let sel = Selection {
        saved: [ns.clone()].into_iter().collect(),
        whole_dbs: Default::default(),
        all_dbs: false,
        globs: Vec::new(),
        renames: Renames::parse(&[format!("{name}.*:{target}.*")], &[], &[]).unwrap(),
    };
    let mut r = Replayer::new(client, &sel, [ns].into_iter().collect());
    for e in &entries {
        r.apply(e).unwrap_or_else(|err| panic!("{ops:?}: {err}"));
    }
    r.finish().unwrap_or_else(|err| panic!("{ops:?}: {err}"));
    let docs = raw_docs(&live);
    assert_eq!(docs, raw_docs(&client.database(&target)), "{ops:?}");
    live.drop().run().unwrap();
    client.database(&target).drop().run().unwrap();
    docs
}

#[test]
fn a_unique_value_moving_between_documents_replays_in_order() {
    let Some(srv) = private_server(100_000) else {
        return;
    };
    let client = Client::with_uri_str(&srv.uri).unwrap();
    // A holds x, B holds y; A moves to z, B takes x, A changes again: written at the
    // position of each document's *last* change, B would clash with A.
    let docs = check(
        &client,
        &[Op::Insert(1, 0), Op::Insert(2, 1)],
        &[Op::SetCode(1, 2), Op::SetCode(2, 0), Op::SetOther(1, 7)],
    );
    let want: Vec<Vec<u8>> = [
        doc! {"_id": 1, "code": 2, "other": 7},
        doc! {"_id": 2, "code": 0},
    ]
    .iter()
    .map(|d| RawDocumentBuf::from_document(d).unwrap().into_bytes())
    .collect();
    assert_eq!(docs, want);
}

#[test]
fn random_writes_under_a_unique_index_replay_exactly() {
    let Some(srv) = private_server(100_000) else {
        return;
    };
    let client = Client::with_uri_str(&srv.uri).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let documents = std::cell::Cell::new(0);
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            documents.set(documents.get() + check(&client, &[Op::Insert(0, 3)], &ops).len());
            Ok(())
        })
        .unwrap();
    assert!(
        documents.get() > 24,
        "the random writes left almost nothing to compare"
    );
}

/// Snapshot and `follow` reach one server through different spellings of its address:
/// they are one source (what the server says it is), so a later moment restores with
/// the changes, instead of the snapshot's state with a note.
#[test]
fn snapshot_and_follow_by_different_uris_are_one_source() {
    use crate::common::Env;
    use crate::mongodb_pitr::{follow, restore_at, stop, tick};
    let Some(srv) = private_server(100_000) else {
        return;
    };
    let client = Client::with_uri_str(&srv.uri).unwrap();
    let port = srv
        .uri
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let uri_a = crate::common::patient(&format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true"
    ));
    let uri_b = crate::common::patient(&format!(
        "mongodb://127.0.0.1:{port}?appName=other&directConnection=true"
    ));
    let db = client.database("app");
    let c = db.collection::<Document>("c");
    c.insert_one(doc! {"_id": 1, "v": "before"}).run().unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri_a, "--db=app"]);
    let f = follow(&env, &uri_b, "app");
    tick();
    c.update_one(doc! {"_id": 1}, doc! {"$set": {"v": "after"}})
        .run()
        .unwrap();
    tick();
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    stop(f);
    let cov = env.json(&["mongodb", "coverage"]);
    assert_eq!(cov.as_array().unwrap().len(), 1, "one source: {cov}");
    assert!(
        cov[0]["source"].as_str().unwrap().starts_with("replset:"),
        "{cov}"
    );
    restore_at(&env, &at, &uri_a, &["--ns-rename", "app.*:r.*"]);
    let got = client
        .database("r")
        .collection::<Document>("c")
        .find_one(doc! {"_id": 1})
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(got.get_str("v").unwrap(), "after");
}
