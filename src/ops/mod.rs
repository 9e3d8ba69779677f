//! One module per verb. These are the only places that start threads.

pub mod check;
pub mod context;
pub mod copy;
pub mod diff;
pub mod dump;
pub mod find;
pub mod forget;
pub mod history;
pub mod index;
pub mod init;
pub mod keys;
pub mod locks;
pub mod ls;
#[cfg(feature = "mongo")]
pub mod mongodb;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod run;
pub mod scan;
pub mod select;
pub mod settings;
pub mod snapshot;
pub mod snapshots;
pub mod stats;
pub mod verify;
