//! Where backup input comes from. Each source turns live data into tree nodes and content
//! streams; the backup pipeline (ops/snapshot) never looks inside them.

pub mod exclude;
pub mod fs;
