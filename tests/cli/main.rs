//! End-to-end tests of the `repo` binary: each test gets its own HOME and repository.

mod common;
mod copy;
mod corruption;
mod crash;
mod dedup;
mod errors;
mod fixtures;
mod fuzz_corpus;
mod history;
mod hostile;
mod incremental;
mod locking;
mod maintenance;
mod mongodb;
#[cfg(feature = "mongo")]
mod mongodb_pitr;
#[cfg(feature = "mongo")]
mod mongodb_pitr_copy;
#[cfg(feature = "mongo")]
mod mongodb_pitr_scope;
#[cfg(feature = "mongo")]
mod mongodb_replay;
#[cfg(feature = "mongo")]
mod mongodb_restore;
#[cfg(feature = "object-store")]
mod object_store;
mod prune_windows;
mod repair;
mod restore_policy;
mod roundtrip;
mod scan;
#[cfg(feature = "object-store")]
mod sftp;
mod vectors;
