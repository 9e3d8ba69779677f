//! `restore --at` across what is not a plain collection: stored functions (`system.js`),
//! time-series and clustered collections, views — and a change the server logged without
//! saying what it was, which is refused before anything is written.

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::sync::{Client, Database};

use crate::common::{mongo_server as server, unique_db, Env};
use crate::mongodb_pitr::{follow, on_rust_server, restore_at, stop, tick, try_restore_at};

/// Per collection or view: its listCollections options, and its documents' bytes (views:
/// none). The catalogs the server keeps itself are left out (the Rust SecantusDB lists
/// them, as mongod does): `system.views` names its database, and a time-series
/// collection's buckets are new ones after a restore.
fn state(db: &Database) -> Vec<(String, String, Vec<Vec<u8>>)> {
    let mut out: Vec<_> = db
        .list_collections()
        .run()
        .unwrap()
        .map(|c| c.unwrap())
        .filter(|c| c.name != "system.views" && !c.name.starts_with("system.buckets."))
        .map(|c| {
            let options = c.options;
            let view = options.view_on.is_some();
            let docs = if view {
                Vec::new()
            } else {
                let mut d: Vec<Vec<u8>> = db
                    .collection::<RawDocumentBuf>(&c.name)
                    .find(doc! {})
                    .run()
                    .unwrap()
                    .map(|d| d.unwrap().into_bytes())
                    .collect();
                d.sort();
                d
            };
            (c.name, format!("{options:?}"), docs)
        })
        .collect();
    out.sort();
    out
}

fn bare_coll_mod_logged(client: &Client, db: &str, coll: &str) -> bool {
    let entry = client
        .database("local")
        .collection::<Document>("oplog.rs")
        .find_one(doc! {"ns": format!("{db}.$cmd"), "o.collMod": coll})
        .run()
        .unwrap()
        .expect("the collMod entry");
    entry.get_document("o").unwrap().len() == 1
}

#[test]
fn stored_functions_time_series_clustered_collections_and_views_roll_forward() {
    let Some((uri, client)) = server() else {
        return;
    };
    kinds_roll_forward(&uri, &client);
}

/// The Rust SecantusDB refuses to create a time-series collection from the options its
/// own `listCollections` gives (granularity and the span it implies).
#[test]
fn every_kind_rolls_forward_on_the_rust_server() {
    on_rust_server(kinds_roll_forward);
}

fn kinds_roll_forward(uri: &str, client: &Client) {
    let uri = uri.to_string();
    let name = unique_db("kinds");
    let db = client.database(&name);
    let js = db.collection::<Document>("system.js");
    let code = |s: &str| Bson::JavaScriptCode(s.to_string());
    js.insert_one(doc! {"_id": "f", "value": code("function () { return 1; }")})
        .run()
        .unwrap();
    let ts_options = doc! {"timeseries": {"timeField": "t", "metaField": "m"}};
    db.run_command(
        doc! {"create": "ts"}
            .into_iter()
            .chain(ts_options)
            .collect::<Document>(),
    )
    .run()
    .unwrap();
    let t0 = mongodb::bson::DateTime::from_millis(1_767_225_600_000);
    let ts = db.collection::<Document>("ts");
    ts.insert_many((0..4).map(|i| doc! {"t": t0, "m": {"s": i % 2}, "v": i}))
        .run()
        .unwrap();
    db.collection::<Document>("c")
        .insert_many((0..5).map(|i| doc! {"_id": i}))
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri, &format!("--db={name}")]);
    let f = follow(&env, &uri, &name);

    js.update_one(
        doc! {"_id": "f"},
        doc! {"$set": {"value": code("function () { return 2; }")}},
    )
    .run()
    .unwrap();
    js.insert_one(doc! {"_id": "g", "value": code("function (x) { return x; }")})
        .run()
        .unwrap();
    ts.insert_many((0..3).map(|i| doc! {"t": t0, "m": {"s": 7}, "v": 100 + i}))
        .run()
        .unwrap();
    ts.delete_many(doc! {"m.s": 1}).run().unwrap();
    db.run_command(doc! {"create": "cl", "clusteredIndex": {"key": {"_id": 1}, "unique": true}})
        .run()
        .unwrap();
    db.collection::<Document>("cl")
        .insert_one(doc! {"_id": "z"})
        .run()
        .unwrap();
    db.run_command(
        doc! {"create": "v", "viewOn": "c", "pipeline": [{"$match": {"_id": {"$gt": 2}}}]},
    )
    .run()
    .unwrap();
    tick();
    let want = state(&db);
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    db.run_command(doc! {"collMod": "v", "viewOn": "c", "pipeline": [{"$match": {"_id": 0}}]})
        .run()
        .unwrap();
    tick();
    let redefined = state(&db);
    let later = chrono::Utc::now().to_rfc3339();
    tick();
    assert!(!stop(f).is_empty());

    let target = format!("{name}_r");
    let rename = format!("{name}.*:{target}.*");
    restore_at(&env, &at, &uri, &["--ns-rename", &rename]);
    let got = state(&client.database(&target));
    assert!(
        got.iter().any(|(n, _, d)| n == "system.js" && d.len() == 2),
        "{got:?}"
    );
    assert_eq!(got, want);
    client.database(&target).drop().run().unwrap();

    // After the view was redefined: SecantusDB logs that collMod without the new
    // definition, so the moment is refused before anything is written; a server that
    // logs it gives the view as redefined.
    let out = try_restore_at(&env, &later, &uri, &["--ns-rename", &rename]);
    if bare_coll_mod_logged(client, &name, "v") {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("collMod of") && err.contains("view redefined"),
            "{err}"
        );
        let names = client
            .database(&target)
            .list_collection_names()
            .run()
            .unwrap();
        assert!(names.is_empty(), "nothing written: {names:?}");
    } else {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(state(&client.database(&target)), redefined);
    }
    client.database(&target).drop().run().unwrap();
    db.drop().run().unwrap();
}
