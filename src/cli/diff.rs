//! `repo diff`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::diff::{self, Change};

/// Arguments of `repo diff`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The older snapshot (id, prefix or "latest")
    a: String,
    /// The newer snapshot
    b: String,
}

/// Totals of a diff.
#[derive(serde::Serialize, Default)]
struct Totals {
    added: u64,
    removed: u64,
    modified: u64,
    metadata: u64,
    bytes_added: u64,
    bytes_removed: u64,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let (sa, sb) = (repo.find_snapshot(&a.a)?, repo.find_snapshot(&a.b)?);
    let changes = diff::diff(&repo, &sa.tree, &sb.tree)?;
    let mut t = Totals::default();
    for c in &changes {
        match c.change {
            Change::Added => {
                t.added += 1;
                t.bytes_added += c.size_after.unwrap_or(0);
            }
            Change::Removed => {
                t.removed += 1;
                t.bytes_removed += c.size_before.unwrap_or(0);
            }
            Change::Modified => t.modified += 1,
            Change::Metadata => t.metadata += 1,
        }
    }
    if g.json {
        print_json(&serde_json::json!({
            "from": sa.id, "to": sb.id, "changes": changes, "totals": t,
        }))?;
        return Ok(0);
    }
    println!("comparing {} with {}", sa.id.short(), sb.id.short());
    for c in &changes {
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
