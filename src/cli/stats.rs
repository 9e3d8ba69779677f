//! `repo stats`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json, table};
use repo::ops::select::SnapshotRef;
use repo::ops::stats::{self, StatsRequest};

/// Arguments of `repo stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only list this snapshot in the per-snapshot table ("latest" with the filters below
    /// when only they are given)
    snapshot: Option<String>,
    #[command(flatten)]
    select: super::snapshots::SelectArgs,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let filter = a.select.filter(g)?;
    let snapshot = match a.snapshot {
        Some(s) => Some(SnapshotRef::id(s).with_filter(filter)),
        None if !filter.is_empty() => Some(SnapshotRef::latest().with_filter(filter)),
        None => None,
    };
    let repo = g.open(false)?;
    let req = StatsRequest { snapshot };
    let st = stats::run(&repo, &req, &g.ctx())?;
    if g.json {
        print_json(&st)?;
        return Ok(0);
    }
    println!("snapshots:          {}", st.snapshots);
    println!("size on disk:       {}", bytes(st.size_on_disk));
    if let Some(q) = st.quota_bytes {
        println!(
            "quota:              {} ({:.0}% used)",
            bytes(q),
            100.0 * st.size_on_disk as f64 / q as f64
        );
    }
    println!("packs:              {}", st.packs);
    println!(
        "blobs:              {} data, {} tree",
        st.data_blobs, st.tree_blobs
    );
    println!(
        "all snapshots:      {} of files",
        bytes(st.snapshots_raw_bytes)
    );
    println!(
        "unique data:        {} ({} stored)",
        bytes(st.data_raw_bytes),
        bytes(st.data_stored_bytes)
    );
    println!("dedup ratio:        {:.2}x", st.dedup_ratio);
    println!("compression ratio:  {:.2}x", st.compression_ratio);
    println!(
        "reclaimable:        {} (repo prune --max-unused 0%)",
        bytes(st.reclaimable_bytes)
    );
    let rows: Vec<Vec<String>> = st
        .per_snapshot
        .iter()
        .map(|s| {
            vec![
                s.id[..8].to_string(),
                s.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                s.files.to_string(),
                bytes(s.raw_bytes),
                bytes(s.unique_raw_bytes),
                bytes(s.unique_stored_bytes),
            ]
        })
        .collect();
    println!();
    println!(
        "{}",
        table(
            &[
                "id",
                "time (UTC)",
                "files",
                "size",
                "unique",
                "unique stored"
            ],
            &rows
        )
        .trim_end()
    );
    Ok(0)
}
