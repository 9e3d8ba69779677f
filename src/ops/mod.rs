//! One module per verb. These are the only places that start threads.

pub mod check;
pub mod diff;
pub mod find;
pub mod ls;
pub mod restore;
pub mod scan;
pub mod snapshot;
