//! `repo ls`.

use anyhow::Result;
use serde::Serialize;

use super::context::GlobalOpts;
use repo::ops::ls;
use repo::tree::{Node, NodeKind};

/// Arguments of `repo ls`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id (or unique prefix), or "latest"
    snapshot: String,
    /// Only list this path and what is below it
    #[arg(default_value = "/")]
    path: String,
    /// Show type, mode, owner, size and modification time
    #[arg(long, short = 'l')]
    long: bool,
}

#[derive(Serialize)]
struct Entry<'a> {
    path: &'a str,
    #[serde(rename = "type")]
    kind: NodeKind,
    mode: String,
    uid: u32,
    gid: u32,
    user: &'a str,
    group: &'a str,
    size: u64,
    mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

fn mode_string(n: &Node) -> String {
    let mut s = String::with_capacity(10);
    s.push(n.kind().letter());
    for shift in [6, 3, 0] {
        let bits = (n.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn mtime(n: &Node) -> String {
    repo::tree::format_time(n.mtime)
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let snap = repo.find_snapshot(&a.snapshot)?;
    let mut json = Vec::new();
    ls::walk(&repo, &snap, &a.path, &mut |path, n| {
        if g.json {
            json.push(
                serde_json::to_value(Entry {
                    path,
                    kind: n.kind(),
                    mode: format!("{:04o}", n.mode),
                    uid: n.uid,
                    gid: n.gid,
                    user: &n.user,
                    group: &n.group,
                    size: n.size,
                    mtime: mtime(n),
                    target: (n.kind() == NodeKind::Symlink)
                        .then(|| String::from_utf8_lossy(&n.target).into_owned()),
                })
                .unwrap_or_default(),
            );
        } else if a.long {
            let link = if n.kind() == NodeKind::Symlink {
                format!(" -> {}", String::from_utf8_lossy(&n.target))
            } else {
                String::new()
            };
            let owner = if n.user.is_empty() {
                n.uid.to_string()
            } else {
                n.user.clone()
            };
            let group = if n.group.is_empty() {
                n.gid.to_string()
            } else {
                n.group.clone()
            };
            println!(
                "{} {owner:>8} {group:>8} {:>12} {} {path}{link}",
                mode_string(n),
                n.size,
                mtime(n)
            );
        } else {
            println!("{path}");
        }
        Ok(())
    })?;
    if g.json {
        super::fmt::print_json(&json)?;
        return Ok(0);
    }
    // Under /mongodb, also say what the files hold: collections with their counts.
    let trimmed = a.path.trim_end_matches('/');
    if trimmed == "/mongodb" || trimmed.starts_with("/mongodb/") {
        let db = trimmed
            .strip_prefix("/mongodb/")
            .map(|d| d.split('/').next().unwrap_or(d));
        let rows: Vec<Vec<String>> = repo::ops::restore::mongo::collections(&repo, &snap)?
            .into_iter()
            .filter(|c| db.is_none_or(|d| c.ns.starts_with(&format!("{d}."))))
            .map(|c| {
                vec![
                    c.ns,
                    c.kind,
                    c.documents.to_string(),
                    super::fmt::bytes(c.bytes),
                    c.indexes.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
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
    }
    Ok(0)
}
