//! One module per verb. These are the only places that start threads.

pub mod check;
pub mod copy;
pub mod diff;
pub mod find;
pub mod forget;
pub mod keys;
pub mod ls;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod scan;
#[cfg(feature = "mongo")]
pub mod scan_mongo;
pub mod snapshot;
pub mod stats;
