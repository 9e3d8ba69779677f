//! MongoDB backups that always restore: odd collection names, index specs as the server
//! keeps them, validators, capped order, system.js, rename rules that cannot be misread,
//! honest conflict accounting and errors for people — each a regression test named after
//! the behaviour, against a real server.

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::sync::Database;

use crate::common::{mongo_server as server, unique_db, Env};

/// Every document of a collection as raw bytes, in `_id` order.
fn raw_docs(db: &Database, coll: &str) -> Vec<Vec<u8>> {
    db.collection::<RawDocumentBuf>(coll)
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .run()
        .unwrap()
        .map(|d| d.unwrap().into_bytes())
        .collect()
}

/// Index specs without `v` and `ns`, by name.
fn specs(db: &Database, coll: &str) -> Vec<Document> {
    let mut out: Vec<Document> = db
        .run_cursor_command(doc! {"listIndexes": coll})
        .run()
        .unwrap()
        .map(|d| {
            let mut d = d.unwrap();
            d.remove("v");
            d.remove("ns");
            d
        })
        .collect();
    out.sort_by(|a, b| a.get_str("name").unwrap().cmp(b.get_str("name").unwrap()));
    out
}

fn restore(env: &Env, uri: &str, extra: &[&str]) -> std::process::Output {
    let mut a = vec!["restore", "latest", "--mongodb-uri", uri, "--json"];
    a.extend_from_slice(extra);
    env.run(&a)
}

/// Snapshots database `name` and restores it as `{name}_r` (see [`restore_as_copy`]).
fn round_trip(env: &Env, uri: &str, name: &str) -> (String, serde_json::Value) {
    env.json(&["snapshot", uri, &format!("--db={name}")]);
    restore_as_copy(env, uri, name)
}

/// Restores the latest snapshot's database `name` as `{name}_r`, which must succeed;
/// returns the restored database's name and the restore's JSON report.
fn restore_as_copy(env: &Env, uri: &str, name: &str) -> (String, serde_json::Value) {
    let target = format!("{name}_r");
    let out = restore(env, uri, &["--ns-rename", &format!("{name}.*:{target}.*")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (target, serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn collection_names_that_collided_in_the_flat_layout_round_trip() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("names");
    let db = client.database(&name);
    let long = "n".repeat(180);
    let names = [
        "t",
        "t.metadata",
        "x.bson",
        "data.bson",
        "metadata.bson",
        "a/b",
        "%25",
        "ünï cødé",
        "sessions:2024",
        "a\\b",
        long.as_str(),
    ];
    for (i, n) in names.iter().enumerate() {
        db.collection::<Document>(n)
            .insert_many((0..3).map(|j| doc! {"_id": j, "from": *n, "i": i as i32}))
            .run()
            .unwrap();
    }
    let env = Env::new();
    env.init();
    let snap = env.json(&["snapshot", &uri, &format!("--db={name}")]);
    assert_eq!(snap["mongodb"]["collections"], names.len());
    assert_eq!(snap["mongodb"]["layout"], 2);
    let (target, _) = restore_as_copy(&env, &uri, &name);
    let tdb = client.database(&target);
    for n in names {
        assert_eq!(raw_docs(&db, n), raw_docs(&tdb, n), "{n}");
    }
    // Scan and a restore of one of them work too.
    let scan = env.run(&["scan", "--mongodb-uri", &uri, "--json"]);
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let one = format!("{name}_one");
    let out = restore(
        &env,
        &uri,
        &[
            "--ns",
            &format!("{name}.t.metadata"),
            "--ns-rename",
            &format!("{name}.*:{one}.*"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        client.database(&one).list_collection_names().run().unwrap(),
        vec!["t.metadata".to_string()]
    );
    for d in [&name, &target, &one] {
        client.database(d).drop().run().unwrap();
    }
}

#[test]
fn index_specs_keep_every_option_whatever_its_type() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("idx");
    let db = client.database(&name);
    db.collection::<Document>("c")
        .insert_many(
            (0..20).map(
                |i| doc! {"_id": i, "a": i, "b": i, "c": i, "d": mongodb::bson::DateTime::now()},
            ),
        )
        .run()
        .unwrap();
    db.run_command(doc! {"createIndexes": "c", "indexes": [
        {"key": {"a": 1}, "name": "a_unique_int", "unique": 1},
        {"key": {"b": 1}, "name": "b_sparse_int", "sparse": 1},
        {"key": {"c": -1}, "name": "c_hidden", "hidden": true},
        {"key": {"d": 1}, "name": "d_ttl_double", "expireAfterSeconds": 3600.0},
        {"key": {"a": 1, "b": -1}, "name": "partial", "partialFilterExpression": {"a": {"$gt": 5}}},
    ]})
    .run()
    .unwrap();
    let env = Env::new();
    env.init();
    let (target, report) = round_trip(&env, &uri, &name);
    let created: Vec<&str> = report["collections"][0]["indexes_created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(created.len(), 5, "{report}");
    assert_eq!(specs(&db, "c"), specs(&client.database(&target), "c"));
    db.drop().run().unwrap();
    client.database(&target).drop().run().unwrap();
}

#[test]
fn validators_never_block_a_restore() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("valid");
    let db = client.database(&name);
    let c = db.collection::<Document>("c");
    c.insert_many([doc! {"_id": 1, "n": "text"}, doc! {"_id": 2, "n": 5}])
        .run()
        .unwrap();
    // A validator added later that an old document breaks.
    db.run_command(doc! {"collMod": "c", "validator": {"n": {"$type": "int"}},
    "validationLevel": "strict", "validationAction": "error"})
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    let (target, _) = round_trip(&env, &uri, &name);
    let tdb = client.database(&target);
    assert_eq!(raw_docs(&db, "c"), raw_docs(&tdb, "c"));
    // The validator is back as it was, and enforced.
    let opts = |d: &Database| {
        d.run_command(doc! {"listCollections": 1, "filter": {"name": "c"}})
            .run()
            .unwrap()
            .get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap()[0]
            .as_document()
            .unwrap()
            .get_document("options")
            .unwrap()
            .clone()
    };
    assert_eq!(opts(&db), opts(&tdb));
    assert!(tdb
        .collection::<Document>("c")
        .insert_one(doc! {"_id": 3, "n": "bad"})
        .run()
        .is_err());
    db.drop().run().unwrap();
    tdb.drop().run().unwrap();
}

#[test]
fn capped_collections_keep_insertion_order() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("capped");
    let db = client.database(&name);
    db.run_command(doc! {"create": "log", "capped": true, "size": 1_000_000})
        .run()
        .unwrap();
    let order: Vec<i32> = vec![50, 3, 99, 1, 77, 20, 8];
    for i in &order {
        db.collection::<Document>("log")
            .insert_one(doc! {"_id": i, "msg": format!("entry {i}")})
            .run()
            .unwrap();
    }
    let env = Env::new();
    env.init();
    let (target, _) = round_trip(&env, &uri, &name);
    let natural = |d: &Database| -> Vec<Bson> {
        d.collection::<Document>("log")
            .find(doc! {})
            .sort(doc! {"$natural": 1})
            .run()
            .unwrap()
            .map(|x| x.unwrap().get("_id").unwrap().clone())
            .collect()
    };
    let want: Vec<Bson> = order.iter().map(|i| Bson::Int32(*i)).collect();
    assert_eq!(natural(&db), want);
    assert_eq!(natural(&client.database(&target)), want);
    db.drop().run().unwrap();
    client.database(&target).drop().run().unwrap();
}

#[test]
fn stored_functions_are_saved_and_other_system_collections_reported() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("sysjs");
    let db = client.database(&name);
    db.collection::<Document>("system.js")
        .insert_one(doc! {"_id": "double", "value": Bson::JavaScriptCode("function(x) { return 2 * x; }".into())})
        .run()
        .unwrap();
    db.collection::<Document>("data")
        .insert_one(doc! {"_id": 1})
        .run()
        .unwrap();
    db.run_command(doc! {"create": "v", "viewOn": "data", "pipeline": []})
        .run()
        .unwrap();
    // A server-managed collection (the profiler's).
    db.run_command(doc! {"create": "system.profile"})
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    let out = env
        .cmd(&["snapshot", &uri, &format!("--db={name}"), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{name}.system.profile")), "{err}");
    let (target, _) = restore_as_copy(&env, &uri, &name);
    let tdb = client.database(&target);
    assert_eq!(raw_docs(&db, "system.js"), raw_docs(&tdb, "system.js"));
    assert_eq!(raw_docs(&db, "v"), raw_docs(&tdb, "v"));
    db.drop().run().unwrap();
    tdb.drop().run().unwrap();
}

#[test]
fn ns_rename_cannot_destroy_live_data() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("rename");
    let db = client.database(&name);
    let live = db.collection::<Document>("sessions:2024");
    live.insert_one(doc! {"_id": 1}).run().unwrap();
    db.collection::<Document>("other")
        .insert_one(doc! {"_id": 1})
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri, &format!("--db={name}")]);
    // Written after the snapshot: must survive every refused restore below.
    live.insert_one(doc! {"_id": 2}).run().unwrap();
    let count = || live.count_documents(doc! {}).run().unwrap();
    let refused = |extra: &[&str], why: &str| {
        let mut a = vec!["--conflict", "drop"];
        a.extend_from_slice(extra);
        let out = restore(&env, &uri, &a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} was not refused");
        assert!(err.contains(why), "{extra:?}: {err}");
        assert_eq!(count(), 2, "{extra:?} touched the live collection");
    };
    let ns = format!("{name}.sessions:2024");
    // The rule that used to be split at its first ':'.
    refused(
        &[
            "--ns",
            &ns,
            "--ns-rename",
            &format!("{ns}:{name}_old.sessions:2024"),
        ],
        "exactly one ':'",
    );
    // A rule that matches nothing.
    refused(
        &[
            "--ns",
            &ns,
            "--ns-rename",
            &format!("{name}.nope:{name}_old.nope"),
        ],
        "matches no collection",
    );
    // Two sources onto one target.
    refused(
        &[
            "--ns-rename",
            &format!("{name}.other:{name}_old.same"),
            "--ns-from",
            &ns,
            "--ns-to",
            &format!("{name}_old.same"),
        ],
        "would all be restored into",
    );
    // Renames that leave a collection in place, on the server it came from.
    refused(
        &["--ns-rename", &format!("{name}.other:{name}_old.other")],
        "--in-place",
    );
    // Escaped, or as a pair, it goes where it was meant to.
    let esc = format!("{name}.sessions\\:2024:{name}_old.sessions\\:2024");
    let out = restore(&env, &uri, &["--ns", &ns, "--ns-rename", &esc]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old = client.database(&format!("{name}_old"));
    assert_eq!(
        old.collection::<Document>("sessions:2024")
            .count_documents(doc! {})
            .run()
            .unwrap(),
        1
    );
    assert_eq!(count(), 2);
    let out = restore(
        &env,
        &uri,
        &[
            "--ns",
            &ns,
            "--ns-from",
            &ns,
            "--ns-to",
            &format!("{name}_pair.s:1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in [name.clone(), format!("{name}_old"), format!("{name}_pair")] {
        client.database(&d).drop().run().unwrap();
    }
}

#[test]
fn skip_counts_a_document_kept_only_when_its_id_was_there() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("skip");
    let db = client.database(&name);
    db.collection::<Document>("c")
        .insert_many([
            doc! {"_id": 1, "code": "a"},
            doc! {"_id": 2, "code": "b"},
            doc! {"_id": 3, "code": "c"},
        ])
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri, &format!("--db={name}")]);
    // The target already has _id 1, and another document holding code "b".
    let target = format!("{name}_r");
    let t = client.database(&target).collection::<Document>("c");
    t.insert_many([doc! {"_id": 1, "code": "a"}, doc! {"_id": 42, "code": "b"}])
        .run()
        .unwrap();
    client
        .database(&target)
        .run_command(doc! {"createIndexes": "c", "indexes": [{"key": {"code": 1}, "name": "code_1", "unique": true}]})
        .run()
        .unwrap();
    let out = restore(
        &env,
        &uri,
        &[
            "--ns-rename",
            &format!("{name}.*:{target}.*"),
            "--conflict",
            "skip",
        ],
    );
    assert!(
        !out.status.success(),
        "a document that was not restored must fail the run"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &report["collections"][0];
    assert_eq!(
        (
            c["inserted"].as_u64(),
            c["skipped"].as_u64(),
            c["failed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{report}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // For people: the collection, the _id, the server's reason, how to resume; no dumps.
    assert!(
        err.contains(&format!("{target}.c")) && err.contains("_id 2") && err.contains("11000"),
        "{err}"
    );
    assert!(err.contains("to resume"), "{err}");
    assert!(
        !err.contains("RawDocumentBuf") && !err.contains("data:"),
        "{err}"
    );
    db.drop().run().unwrap();
    client.database(&target).drop().run().unwrap();
}

/// A snapshot of two databases, one of them empty then: a whole-database rename rule for
/// each (as a script restoring the backup's scope writes them) restores the other; the
/// rule for the empty one is no typo. A rule for a database outside the scope still is.
#[test]
fn a_rename_of_a_whole_database_saved_empty_is_no_typo() {
    let Some((uri, client)) = server() else {
        return;
    };
    let full = unique_db("full");
    let empty = unique_db("empty");
    client
        .database(&full)
        .collection::<Document>("c")
        .insert_one(doc! {"_id": 1})
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    env.json(&[
        "snapshot",
        &uri,
        &format!("--db={full}"),
        &format!("--db={empty}"),
    ]);
    let rules = |extra: &str| {
        vec![
            format!("{full}.*:{full}_r.*"),
            format!("{empty}.*:{empty}_r.*"),
            extra.to_string(),
        ]
    };
    let args = |r: &[String]| -> Vec<String> {
        r.iter()
            .filter(|x| !x.is_empty())
            .flat_map(|x| ["--ns-rename".to_string(), x.clone()])
            .collect()
    };
    let typo = args(&rules(&format!("{full}x.*:elsewhere.*")));
    let out = restore(
        &env,
        &uri,
        &typo.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a rule for a database never saved was accepted"
    );
    assert!(err.contains("matches no collection"), "{err}");
    let ok = args(&rules(""));
    let out = restore(
        &env,
        &uri,
        &ok.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = client.database(&format!("{full}_r"));
    assert_eq!(raw_docs(&r, "c").len(), 1);
    r.drop().run().unwrap();
    client.database(&full).drop().run().unwrap();
}
