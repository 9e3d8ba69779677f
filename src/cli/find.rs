//! `repo find`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json, table};
use super::snapshots::filter;
use repo::ops::find::{self, Pattern};

/// Arguments of `repo find`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Glob: without "/" it matches names (`*.pdf`), with "/" whole snapshot paths
    /// (`/home/*/docs/**`)
    pattern: String,
    /// Only snapshots of this host (repeatable)
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Only snapshots that contain this path (repeatable)
    #[arg(long = "path")]
    paths: Vec<String>,
    /// Only snapshots with this tag (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only snapshots taken at or after this time
    #[arg(long)]
    since: Option<String>,
    /// Only snapshots taken at or before this time
    #[arg(long)]
    until: Option<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let pat = Pattern::new(&a.pattern)?;
    let f = filter(
        a.hosts,
        &a.paths,
        a.tags,
        None,
        a.since.as_deref(),
        a.until.as_deref(),
    )?;
    let repo = g.open(false)?;
    let snaps = f.apply(repo.snapshots()?);
    let found = find::find(&repo, &snaps, &pat)?;
    if g.json {
        print_json(&found)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|m| {
            vec![
                m.snapshot.clone(),
                m.time.get(..19).unwrap_or(&m.time).replace('T', " "),
                m.path.clone(),
                bytes(m.size),
                m.mtime.get(..19).unwrap_or(&m.mtime).replace('T', " "),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["snapshot", "time (UTC)", "path", "size", "mtime"], &rows)
    );
    println!(
        "{} match(es) in {} snapshot(s) searched",
        found.len(),
        snaps.len()
    );
    Ok(0)
}
