//! `repo copy` carries MongoDB point-in-time coverage: the oplog slices that extend the
//! copied snapshots move with them (re-keyed like every chunk), once.

use mongodb::bson::{doc, Document};

use crate::common::{mongo_server as server, ok_output as ok, unique_db, Env};
use crate::mongodb_pitr::{follow, state, stop, tick};

#[test]
fn copy_brings_the_oplog_slices_along() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("pitrcopy");
    let db = client.database(&name);
    let c = db.collection::<Document>("c");
    c.insert_many((0..20).map(|i| doc! {"_id": i, "v": 0}))
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri, &format!("--db={name}")]);
    let f = follow(&env, &uri, &name);
    c.update_many(doc! {"_id": {"$lt": 10}}, doc! {"$set": {"v": 1}})
        .run()
        .unwrap();
    c.delete_one(doc! {"_id": 19}).run().unwrap();
    c.insert_one(doc! {"_id": 100, "v": 2}).run().unwrap();
    tick();
    let want = state(&db);
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    c.delete_many(doc! {}).run().unwrap();
    tick();
    assert!(!stop(f).is_empty());

    // The copy lives in another repository (same password); `--repo` picks it.
    let dst = env.path("copy");
    let dst = dst.to_str().unwrap();
    let in_dst = |args: &[&str]| {
        let mut all = vec!["--repo", dst];
        all.extend_from_slice(args);
        ok(env.cmd(&all))
    };
    let src = env.repo();
    let src = src.to_str().unwrap();
    in_dst(&["init"]);
    let first: serde_json::Value =
        serde_json::from_str(&in_dst(&["copy", "--from", src, "--json"])).unwrap();
    assert_eq!(first["copied"].as_array().unwrap().len(), 1, "{first}");
    let copied = first["oplog_slices_copied"].as_u64().unwrap();
    assert!(copied >= 1, "{first}");

    // In the copy, the moment between the steps is restorable and restores exactly.
    let cov: serde_json::Value =
        serde_json::from_str(&in_dst(&["mongodb", "coverage", "--json"])).unwrap();
    assert!(cov.to_string().contains("ranges"), "{cov}");
    let target = format!("{name}_copy");
    in_dst(&[
        "restore",
        "--at",
        &at,
        "--mongodb-uri",
        &uri,
        "--ns-rename",
        &format!("{name}.*:{target}.*"),
    ]);
    assert!(state(&client.database(&target)) == want);

    // Again: nothing new to copy, neither snapshots nor slices.
    let again: serde_json::Value =
        serde_json::from_str(&in_dst(&["copy", "--from", src, "--json"])).unwrap();
    assert_eq!(again["oplog_slices_copied"], 0, "{again}");
    assert_eq!(again["blobs_added"], 0, "{again}");
    in_dst(&["check", "--read-data"]);
    client.database(&target).drop().run().unwrap();
    db.drop().run().unwrap();
}
