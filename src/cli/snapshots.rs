//! `repo snapshots`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json, table};

/// Arguments of `repo snapshots`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(g: &GlobalOpts, _a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let snaps = repo.snapshots()?;
    if g.json {
        print_json(&snaps)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = snaps
        .iter()
        .map(|s| {
            let m = &s.summary;
            vec![
                s.id.short(),
                s.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                s.host.clone(),
                format!("{}:{}", s.source.kind, s.source.description),
                s.tags.join(","),
                (m.files_new + m.files_changed + m.files_unchanged).to_string(),
                bytes(m.total_bytes),
                bytes(m.bytes_added),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "id",
                "time (UTC)",
                "host",
                "source",
                "tags",
                "files",
                "size",
                "added"
            ],
            &rows
        )
    );
    println!("{} snapshot(s)", snaps.len());
    Ok(0)
}
