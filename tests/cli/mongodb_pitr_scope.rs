//! What a roll-forward restores follows what the snapshot was taken of: the whole server
//! (databases created later too), whole databases (collections created later too), or
//! single collections (only those).

use mongodb::bson::{doc, Document};
use mongodb::sync::Client;
use mongodb::IndexModel;

use crate::common::{mongo_server as server, unique_db, Env};
use crate::mongodb_pitr::{
    follow, follow_all, private_server, restore_at, state, stop, tick, try_restore_at,
};

#[test]
fn new_databases_and_collections_are_replayed_within_the_snapshots_scope() {
    // A server of its own: a whole-server snapshot must not see other tests' databases.
    let Some(p) = private_server(100_000) else {
        return;
    };
    let client = Client::with_uri_str(&p.uri).unwrap();
    let app = client.database("app");
    let c = app.collection::<Document>("c");
    let d = app.collection::<Document>("d");
    c.insert_many((0..5).map(|i| doc! {"_id": i, "v": 0}))
        .run()
        .unwrap();
    d.insert_one(doc! {"_id": 1, "v": 0}).run().unwrap();
    let env = Env::new();
    env.init();

    // Whole server: a database created after the snapshot is part of the moment.
    env.json(&["snapshot", &p.uri]);
    let f = follow_all(&env, &p.uri);
    let fresh = client.database("fresh");
    let x = fresh.collection::<Document>("x");
    x.insert_many((0..3).map(|i| doc! {"_id": i, "v": i}))
        .run()
        .unwrap();
    x.create_index(IndexModel::builder().keys(doc! {"v": 1}).build())
        .run()
        .unwrap();
    c.delete_one(doc! {"_id": 0}).run().unwrap();
    tick();
    let (want_app, want_fresh) = (state(&app), state(&fresh));
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    fresh.drop().run().unwrap();
    c.insert_one(doc! {"_id": 50}).run().unwrap();
    tick();
    assert!(!stop(f).is_empty());
    restore_at(
        &env,
        &at,
        &p.uri,
        &[
            "--ns-rename",
            "app.*:r_app.*",
            "--ns-rename",
            "fresh.*:r_fresh.*",
        ],
    );
    assert!(state(&client.database("r_app")) == want_app);
    let got_fresh = state(&client.database("r_fresh"));
    assert_eq!(got_fresh.len(), 1, "{got_fresh:?}");
    assert!(got_fresh == want_fresh);

    // One collection: the others of its database, old or new, are not replayed (an update
    // of `d`, which the snapshot lacks, must not stop the restore).
    env.json(&["snapshot", &p.uri, "--collection=app.c"]);
    d.update_one(doc! {"_id": 1}, doc! {"$set": {"v": 1}})
        .run()
        .unwrap();
    c.insert_one(doc! {"_id": 60}).run().unwrap();
    app.collection::<Document>("e")
        .insert_one(doc! {"_id": 1})
        .run()
        .unwrap();
    tick();
    let want_c = state(&app)
        .into_iter()
        .filter(|(name, _, _)| name == "c")
        .collect::<Vec<_>>();
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    env.ok(&["mongodb", "follow", "--mongodb-uri", &p.uri, "--once"]);
    restore_at(&env, &at, &p.uri, &["--ns-rename", "app.*:r2.*"]);
    assert!(state(&client.database("r2")) == want_c);
}

/// A database of its own whose collection `c` holds `docs` documents, snapshotted whole,
/// with `follow` running on it.
struct Followed {
    uri: String,
    client: Client,
    name: String,
    env: Env,
    follow: std::process::Child,
}

fn followed(prefix: &str, docs: i32) -> Option<Followed> {
    let (uri, client) = server()?;
    let name = unique_db(prefix);
    client
        .database(&name)
        .collection::<Document>("c")
        .insert_many((0..docs).map(|i| doc! {"_id": i}))
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri, &format!("--db={name}")]);
    let follow = follow(&env, &uri, &name);
    Some(Followed {
        uri,
        client,
        name,
        env,
        follow,
    })
}

#[test]
fn restore_at_in_place_replaces_what_the_oplog_creates_and_never_merges() {
    let Some(Followed {
        uri,
        client,
        name,
        env,
        follow: f,
    }) = followed("inplace", 5)
    else {
        return;
    };
    let db = client.database(&name);
    let c = db.collection::<Document>("c");
    let late = db.collection::<Document>("late");
    late.insert_many((0..3).map(|i| doc! {"_id": i, "v": 1}))
        .run()
        .unwrap();
    c.delete_one(doc! {"_id": 0}).run().unwrap();
    tick();
    let want = state(&db);
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    // The bad writes, after `at`.
    late.insert_one(doc! {"_id": 99}).run().unwrap();
    c.insert_one(doc! {"_id": 100}).run().unwrap();
    tick();
    assert!(!stop(f).is_empty());

    // Merging the snapshot into existing collections would not give the state at `at`.
    let out = try_restore_at(&env, &at, &uri, &["--conflict", "skip"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot merge"), "{err}");
    // A collection the oplog creates already exists at the target: refused by default.
    let elsewhere = format!("{name}_x");
    client
        .database(&elsewhere)
        .collection::<Document>("late")
        .insert_one(doc! {"_id": 7})
        .run()
        .unwrap();
    let rename = format!("{name}.*:{elsewhere}.*");
    let out = try_restore_at(&env, &at, &uri, &["--ns-rename", &rename]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oplog creates") && err.contains("late"),
        "{err}"
    );
    let names = client
        .database(&elsewhere)
        .list_collection_names()
        .run()
        .unwrap();
    assert_eq!(names, vec!["late".to_string()], "nothing written");
    assert_eq!(late.count_documents(doc! {}).run().unwrap(), 4);

    // In place with --conflict drop: exactly the state at `at`, `late` included.
    restore_at(&env, &at, &uri, &["--conflict", "drop"]);
    assert!(state(&db) == want);
    db.drop().run().unwrap();
    client.database(&elsewhere).drop().run().unwrap();
}

#[test]
fn a_collection_created_after_the_snapshot_can_be_restored_alone() {
    let Some(Followed {
        uri,
        client,
        name,
        env,
        follow: f,
    }) = followed("alone", 4)
    else {
        return;
    };
    let db = client.database(&name);
    let late = db.collection::<Document>("late");
    late.insert_many((0..3).map(|i| doc! {"_id": i, "v": i}))
        .run()
        .unwrap();
    late.create_index(IndexModel::builder().keys(doc! {"v": 1}).build())
        .run()
        .unwrap();
    client
        .database("admin")
        .run_command(doc! {"renameCollection": format!("{name}.c"), "to": format!("{name}.moved")})
        .run()
        .unwrap();
    tick();
    let want = state(&db);
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    late.insert_one(doc! {"_id": 99}).run().unwrap();
    tick();
    assert!(!stop(f).is_empty());
    let target = format!("{name}_r");
    let rename = format!("{name}.*:{target}.*");
    let only = |names: &[&str]| -> Vec<_> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        want.iter()
            .filter(|(n, _, _)| names.contains(n))
            .cloned()
            .collect()
    };

    // Only a collection the snapshot lacks: the roll-forward alone restores it.
    let late_ns = format!("{name}.late");
    restore_at(&env, &at, &uri, &["--ns", &late_ns, "--ns-rename", &rename]);
    assert!(state(&client.database(&target)) == only(&["late"]));
    client.database(&target).drop().run().unwrap();

    // A collection renamed from one left out would lack its documents: refused up front.
    let moved = format!("{name}.moved");
    let out = try_restore_at(&env, &at, &uri, &["--ns", &moved, "--ns-rename", &rename]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("--ns '{name}.c'")), "{err}");
    let names = client
        .database(&target)
        .list_collection_names()
        .run()
        .unwrap();
    assert!(names.is_empty(), "nothing written: {names:?}");
    // With its origin selected too, it is restored as it was at the moment.
    let c_ns = format!("{name}.c");
    restore_at(
        &env,
        &at,
        &uri,
        &["--ns", &moved, "--ns", &c_ns, "--ns-rename", &rename],
    );
    assert!(state(&client.database(&target)) == only(&["moved"]));
    client.database(&target).drop().run().unwrap();
    db.drop().run().unwrap();
}

/// A database snapshotted before its first collection is saved empty (with a note, in
/// case its name is a typo), and every later moment rolls forward from that empty state;
/// the empty snapshot itself restores nothing, and says so.
#[test]
fn a_database_saved_before_its_first_collection_rolls_forward_from_empty() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("empty");
    let db = client.database(&name);
    let env = Env::new();
    env.init();
    let out = env.run(&["snapshot", &uri, &format!("--db={name}"), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{name} has no collections")),
        "{stderr}"
    );
    let empty: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = follow(&env, &uri, &name);
    let c = db.collection::<Document>("c");
    c.insert_many((0..10).map(|i| doc! {"_id": i, "v": i}))
        .run()
        .unwrap();
    c.create_index(IndexModel::builder().keys(doc! {"v": -1}).build())
        .run()
        .unwrap();
    db.collection::<Document>("d")
        .insert_one(doc! {"_id": "x"})
        .run()
        .unwrap();
    tick();
    let want = state(&db);
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    c.delete_many(doc! {}).run().unwrap();
    tick();
    assert!(!stop(f).is_empty());
    let copy = format!("{name}_r");
    restore_at(
        &env,
        &at,
        &uri,
        &["--ns-rename", &format!("{name}.*:{copy}.*")],
    );
    assert!(state(&client.database(&copy)) == want);
    client.database(&copy).drop().run().unwrap();

    let out = env.run(&[
        "restore",
        empty["id"].as_str().unwrap(),
        "--mongodb-uri",
        &uri,
        "--ns-rename",
        &format!("{name}.*:{copy}.*"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("holds no collection"), "{stderr}");
    assert!(client
        .database(&copy)
        .list_collection_names()
        .run()
        .unwrap()
        .is_empty());
    db.drop().run().unwrap();
}
