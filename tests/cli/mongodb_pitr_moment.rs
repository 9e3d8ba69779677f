//! `restore --at` an exact oplog moment inside the second of a later snapshot: the state
//! at that moment, rolled forward from an earlier snapshot — never the later snapshot's
//! state, which holds writes made after the moment.

use mongodb::bson::{doc, Document};

use crate::common::{mongo_server as server, unique_db, Env};
use crate::mongodb_pitr::{cluster_time, follow, restore_at, state, stop};

#[test]
fn a_moment_just_before_a_snapshot_in_its_second_is_not_answered_by_it() {
    let Some((uri, client)) = server() else {
        return;
    };
    let name = unique_db("moment");
    let db = client.database(&name);
    let c = db.collection::<Document>("c");
    c.insert_one(doc! {"_id": 0, "v": "base"}).run().unwrap();
    let env = Env::new();
    env.init();
    let dbarg = format!("--db={name}");
    env.json(&["snapshot", &uri, &dbarg]);
    let f = follow(&env, &uri, &name);
    // A write (the moment), a second write, then a snapshot, all in one second: tried
    // from the start of a second until they fit in one.
    let mut found = None;
    for round in 1..=10 {
        while chrono::Utc::now().timestamp_subsec_millis() > 50 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        c.insert_one(doc! {"_id": round, "v": "before"})
            .run()
            .unwrap();
        let want = state(&db);
        c.update_one(doc! {"_id": round}, doc! {"$set": {"v": "after"}})
            .run()
            .unwrap();
        let snap = env.json(&["snapshot", &uri, &dbarg]);
        let entry = client
            .database("local")
            .collection::<Document>("oplog.rs")
            .find_one(doc! {"ns": format!("{name}.c"), "op": "i", "o._id": round})
            .run()
            .unwrap()
            .expect("the insert's oplog entry");
        let t = entry.get_timestamp("ts").unwrap();
        if cluster_time(&snap).time == t.time {
            found = Some((t, want));
            break;
        }
    }
    let (t, want) = found.expect("a write and a snapshot in one second");
    stop(f);
    let at = format!(
        "{} #{}",
        chrono::DateTime::from_timestamp(i64::from(t.time), 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ"),
        t.increment
    );
    let target = format!("{name}_r");
    let rename = format!("{name}.*:{target}.*");
    restore_at(&env, &at, &uri, &["--ns-rename", &rename]);
    let got = state(&client.database(&target));
    assert!(got == want, "the state at {at} is not the one restored");
    client.database(&target).drop().run().unwrap();
    db.drop().run().unwrap();
}
