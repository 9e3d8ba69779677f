//! `repo diff`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::diff::{self, Change, DiffRequest};
use repo::ops::select::SnapshotRef;

/// Arguments of `repo diff`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The older snapshot (id, prefix or "latest")
    a: String,
    /// The newer snapshot
    b: String,
    #[command(flatten)]
    select: super::snapshots::SelectArgs,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let filter = a.select.filter(g)?;
    let repo = g.open(false)?;
    let req = DiffRequest {
        from: SnapshotRef::id(a.a).with_filter(filter.clone()),
        to: SnapshotRef::id(a.b).with_filter(filter),
    };
    let r = diff::run(&repo, &req, &g.ctx())?;
    if g.json {
        print_json(&r)?;
        return Ok(0);
    }
    let (changes, t) = (&r.changes, &r.totals);
    println!("comparing {} with {}", r.from.short(), r.to.short());
    for c in changes {
        let (mark, size) = match c.change {
            Change::Added => ('+', bytes(c.size_after.unwrap_or(0))),
            Change::Removed => ('-', bytes(c.size_before.unwrap_or(0))),
            Change::Modified => (
                'M',
                format!(
                    "{} -> {}",
                    bytes(c.size_before.unwrap_or(0)),
                    bytes(c.size_after.unwrap_or(0))
                ),
            ),
            Change::Metadata => ('U', String::new()),
        };
        println!("{mark}  {}  {size}", c.path);
    }
    println!(
        "{} added ({}), {} removed ({}), {} modified, {} metadata-only",
        t.added,
        bytes(t.bytes_added),
        t.removed,
        bytes(t.bytes_removed),
        t.modified,
        t.metadata
    );
    Ok(0)
}
