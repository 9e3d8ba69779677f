//! `repo locks` and `repo unlock`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::print_json;

/// Arguments of `repo unlock`.
#[derive(clap::Args, Debug)]
pub struct UnlockArgs {
    /// Remove every lock, not only stale ones (only when you know no other repo process runs)
    #[arg(long)]
    all: bool,
}

#[derive(serde::Serialize)]
struct LockRow {
    id: String,
    stale: bool,
    #[serde(flatten)]
    info: Option<repo::lock::LockInfo>,
    error: Option<String>,
}

fn rows(locks: &[repo::lock::FoundLock]) -> Vec<LockRow> {
    let now = chrono::Utc::now();
    locks
        .iter()
        .map(|l| LockRow {
            id: l.id.to_hex(),
            stale: l.is_stale(now),
            info: l.info.as_ref().ok().cloned(),
            error: l.info.as_ref().err().cloned(),
        })
        .collect()
}

/// Lists the repository's locks.
pub fn run_list(g: &GlobalOpts) -> Result<i32> {
    let repo = g.open(false)?;
    let locks = repo::lock::list(repo.backend(), repo.key())?;
    if g.json {
        print_json(&rows(&locks))?;
        return Ok(0);
    }
    if locks.is_empty() {
        println!("no locks");
    }
    let now = chrono::Utc::now();
    for l in &locks {
        let stale = if l.is_stale(now) { " [stale]" } else { "" };
        println!("{}{stale}", l.describe());
    }
    Ok(0)
}

/// Removes stale locks, or all of them.
pub fn run_unlock(g: &GlobalOpts, a: UnlockArgs) -> Result<i32> {
    let repo = g.open(false)?;
    let removed = repo::lock::remove(repo.backend(), repo.key(), a.all)?;
    if g.json {
        print_json(&rows(&removed))?;
        return Ok(0);
    }
    for l in &removed {
        println!("removed {}", l.describe());
    }
    let left = repo::lock::list(repo.backend(), repo.key())?;
    println!(
        "removed {} lock(s); {} live lock(s) remain",
        removed.len(),
        left.len()
    );
    Ok(0)
}
