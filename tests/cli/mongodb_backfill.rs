//! A snapshot whose cluster time precedes the start of a running `follow` (taken while
//! the capture started, or copied in later) is still extended by it: `follow` reads the
//! oplog back to that snapshot, so every moment after it restores.

use mongodb::bson::{doc, Document};

use crate::common::{mongo_server as server, ok_output as ok, unique_db, Env};
use crate::mongodb_pitr::{follow, state, stop, tick, try_restore_at};

#[test]
fn follow_reaches_back_to_a_snapshot_older_than_its_start() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("backfill");
    let db = client.database(&name);
    let c = db.collection::<Document>("c");
    c.insert_many((0..10).map(|i| doc! {"_id": i, "v": 0}))
        .run()
        .unwrap();
    let env = Env::new();
    env.init();
    // The snapshot is taken into another repository, before anything follows.
    let other = env.path("other");
    let other = other.to_str().unwrap();
    ok(env.cmd(&["--repo", other, "init"]));
    let snap: serde_json::Value = serde_json::from_str(&ok(env.cmd(&[
        "--repo",
        other,
        "--json",
        "snapshot",
        &uri,
        &format!("--db={name}"),
    ])))
    .unwrap();
    let snapshot_t = snap["mongodb"]["cluster_time"]["t"].as_u64();
    assert!(snapshot_t.is_some(), "{snap}");

    // Changes between the snapshot and the capture's start: only a read back reaches them.
    tick();
    c.insert_many((10..20).map(|i| doc! {"_id": i, "v": 1}))
        .run()
        .unwrap();
    c.update_one(doc! {"_id": 3}, doc! {"$set": {"v": 9}})
        .run()
        .unwrap();
    tick();
    let want = state(&db);
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    // `follow` starts with no snapshot and no slice here: from the oplog's newest entry.
    let f = follow(&env, &uri, &name);
    tick();
    c.delete_many(doc! {"_id": {"$lt": 5}}).run().unwrap();
    tick();

    // The snapshot arrives while `follow` runs.
    let copied: serde_json::Value =
        serde_json::from_str(&ok(env.cmd(&["copy", "--from", other, "--json"]))).unwrap();
    assert_eq!(copied["copied"].as_array().unwrap().len(), 1, "{copied}");
    c.insert_one(doc! {"_id": 100}).run().unwrap();
    tick();
    tick();
    let slices = stop(f);
    // The moment between the snapshot and the capture's start restores exactly, and
    // coverage shows one range from the snapshot on.
    let target = format!("{name}_bf");
    let out = try_restore_at(
        &env,
        &at,
        &uri,
        &["--ns-rename", &format!("{name}.*:{target}.*")],
    );
    assert!(
        out.status.success(),
        "restore --at {at}: {}\nslices: {slices:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(state(&client.database(&target)) == want);
    let starts: Vec<u64> = slices
        .iter()
        .map(|s| s["after"]["t"].as_u64().unwrap())
        .collect();
    let first = *starts.iter().min().unwrap();
    assert!(
        first < starts[0],
        "a slice from before the capture's start was sealed: {slices:?}"
    );

    let cov = env.json(&["mongodb", "coverage"]);
    let cov = &cov.as_array().unwrap()[0];
    assert_eq!(cov["spans"].as_array().unwrap().len(), 1, "{cov}");
    let ranges = cov["ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 1, "{cov}");
    assert_eq!(ranges[0]["from"]["t"].as_u64(), snapshot_t, "{cov}");
    ok(env.cmd(&["check", "--read-data"]));
    client.database(&target).drop().run().unwrap();
    db.drop().run().unwrap();
}

/// A capture far behind the oplog's head seals as it reads instead of holding everything
/// until it is current; `--once` still reads up to the present.
#[test]
fn follow_far_behind_seals_slice_by_slice() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("behind");
    let db = client.database(&name);
    let c = db.collection::<Document>("c");
    c.insert_one(doc! {"_id": -1}).run().unwrap();
    let env = Env::new();
    env.init();
    env.json(&["snapshot", &uri, &format!("--db={name}")]);
    // 25,000 entries: three of `follow`'s reads of 10,000.
    for k in 0..5 {
        c.insert_many((0..5000).map(|i| doc! {"_id": k * 5000 + i, "pad": "x".repeat(40)}))
            .run()
            .unwrap();
    }
    tick();
    let want = state(&db);
    let at = chrono::Utc::now().to_rfc3339();
    tick();
    let out = ok(env.cmd(&[
        "mongodb",
        "follow",
        "--mongodb-uri",
        &uri,
        "--db",
        &name,
        "--once",
        "--seal-size",
        "64KiB",
        "--json",
    ]));
    let slices: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let entries: u64 = slices.iter().map(|s| s["entries"].as_u64().unwrap()).sum();
    assert_eq!(entries, 25_000, "{slices:?}");
    assert!(slices.len() >= 3, "sealed per read: {}", slices.len());
    let target = format!("{name}_behind");
    let r = try_restore_at(
        &env,
        &at,
        &uri,
        &["--ns-rename", &format!("{name}.*:{target}.*")],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(state(&client.database(&target)) == want);
    client.database(&target).drop().run().unwrap();
    db.drop().run().unwrap();
}
