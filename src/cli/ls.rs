//! `repo ls`.

use anyhow::Result;

use super::context::GlobalOpts;
use repo::ops::ls::{self, LsEntry, LsRequest};
use repo::ops::select::SnapshotRef;
use repo::tree::NodeKind;

/// Arguments of `repo ls`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id (or unique prefix), or "latest" (the newest that holds PATH)
    snapshot: String,
    /// Only list this path and what is below it (names need not be UTF-8)
    #[arg(default_value = "/")]
    path: std::ffi::OsString,
    /// Show type, mode, owner, size and modification time
    #[arg(long, short = 'l')]
    long: bool,
    #[command(flatten)]
    select: super::snapshots::SelectArgs,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let req = LsRequest {
        snapshot: SnapshotRef::id(a.snapshot).with_filter(a.select.filter(g)?),
        path: a.path.into(),
    };
    // JSON is one array: entries are gathered; text is printed as it is read.
    let mut json = Vec::new();
    let report = ls::run(&repo, &req, &g.ctx(), &mut |e| {
        if g.json {
            json.push(e);
        } else if a.long {
            print_long(&e);
        } else {
            println!("{}", e.path.display());
        }
        Ok(())
    })?;
    if g.json {
        super::fmt::print_json(&json)?;
        return Ok(0);
    }
    #[cfg(feature = "mongo")]
    if !report.collections.is_empty() {
        let rows: Vec<Vec<String>> = report
            .collections
            .iter()
            .map(|c| {
                vec![
                    c.ns.clone(),
                    c.kind.clone(),
                    c.documents.to_string(),
                    super::fmt::bytes(c.bytes),
                    c.indexes.to_string(),
                ]
            })
            .collect();
        println!();
        println!(
            "{}",
            super::fmt::table(
                &["collection", "type", "documents", "size", "indexes"],
                &rows
            )
            .trim_end()
        );
    }
    let _ = report;
    Ok(0)
}

fn print_long(e: &LsEntry) {
    let link = match (&e.target, e.kind) {
        (Some(t), NodeKind::Symlink) => format!(" -> {t}"),
        _ => String::new(),
    };
    let owner = if e.user.is_empty() {
        e.uid.to_string()
    } else {
        e.user.clone()
    };
    let group = if e.group.is_empty() {
        e.gid.to_string()
    } else {
        e.group.clone()
    };
    println!(
        "{} {owner:>8} {group:>8} {:>12} {} {}{link}",
        e.mode_string(),
        e.size,
        e.mtime,
        e.path
    );
}
