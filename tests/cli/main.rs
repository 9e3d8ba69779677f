//! End-to-end tests of the `repo` binary: each test gets its own HOME and repository.
//!
//! They need a build with the `testing` feature (failpoints, injected storage faults, the
//! backend conformance suite): `cargo test --features testing`, as `scripts/test` runs it.
//! Without it, the one test below fails and says so, rather than the suite passing empty.

#[cfg(not(feature = "testing"))]
#[test]
fn the_end_to_end_suite_needs_the_testing_feature() {
    panic!("run the end-to-end tests with `--features testing` (scripts/test does)");
}

#[cfg(feature = "testing")]
mod chunking;
mod cli_polish;
#[cfg(feature = "testing")]
mod common;
#[cfg(feature = "testing")]
mod copy;
#[cfg(feature = "testing")]
mod corruption;
#[cfg(feature = "testing")]
mod crash;
#[cfg(feature = "testing")]
mod dedup;
#[cfg(feature = "testing")]
mod dump;
#[cfg(feature = "testing")]
mod errors;
#[cfg(feature = "testing")]
mod fixtures;
#[cfg(feature = "testing")]
mod fuzz_corpus;
#[cfg(feature = "testing")]
mod history;
#[cfg(feature = "testing")]
mod hostile;
#[cfg(feature = "testing")]
mod incremental;
#[cfg(feature = "testing")]
mod locking;
#[cfg(feature = "testing")]
mod maintenance;
#[cfg(feature = "testing")]
mod many_files;
#[cfg(feature = "testing")]
mod mongodb;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_backfill;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_pitr;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_pitr_copy;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_pitr_kinds;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_pitr_moment;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_pitr_scope;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_read_moment;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_replay;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_restore;
#[cfg(all(feature = "mongo", feature = "testing"))]
mod mongodb_reuse;
#[cfg(all(feature = "mount", feature = "testing"))]
mod mount;
#[cfg(all(feature = "object-store", feature = "testing"))]
mod object_store;
#[cfg(feature = "testing")]
mod operation_log;
#[cfg(feature = "testing")]
mod plan_tasks;
#[cfg(feature = "testing")]
mod plans;
#[cfg(feature = "testing")]
mod prune_windows;
#[cfg(feature = "testing")]
mod raw_names;
#[cfg(feature = "testing")]
mod repair;
#[cfg(feature = "testing")]
mod restore_policy;
#[cfg(feature = "testing")]
mod roundtrip;
#[cfg(feature = "testing")]
mod scan;
#[cfg(feature = "testing")]
mod serve;
#[cfg(feature = "testing")]
mod serve_browser;
#[cfg(feature = "testing")]
mod serve_client;
#[cfg(feature = "testing")]
mod serve_follow;
#[cfg(feature = "testing")]
mod serve_schedule;
#[cfg(feature = "testing")]
mod serve_web;
#[cfg(all(feature = "object-store", feature = "testing"))]
mod sftp;
#[cfg(feature = "testing")]
mod units;
#[cfg(feature = "testing")]
mod vectors;
