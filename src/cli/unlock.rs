//! `repo locks` and `repo unlock`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::print_json;
use repo::ops::locks::{self, UnlockRequest};

/// Arguments of `repo unlock`.
#[derive(clap::Args, Debug)]
pub struct UnlockArgs {
    /// Remove every lock, not only stale ones (only when you know no other repo process runs)
    #[arg(long)]
    all: bool,
}

/// Lists the repository's locks.
pub fn run_list(g: &GlobalOpts) -> Result<i32> {
    let repo = g.open(false)?;
    let locks = locks::list(&repo, &g.ctx())?;
    if g.json {
        print_json(&locks)?;
        return Ok(0);
    }
    if locks.is_empty() {
        println!("no locks");
    }
    for l in &locks {
        let stale = if l.stale { " [stale]" } else { "" };
        println!("{}{stale}", l.description);
    }
    Ok(0)
}

/// Removes stale locks, or all of them.
pub fn run_unlock(g: &GlobalOpts, a: UnlockArgs) -> Result<i32> {
    let repo = g.open(false)?;
    let r = locks::unlock(&repo, &UnlockRequest { all: a.all }, &g.ctx())?;
    g.journal.report(&r, false);
    if g.json {
        print_json(&r)?;
        return Ok(0);
    }
    for l in &r.removed {
        println!("removed {}", l.description);
    }
    println!(
        "removed {} lock(s); {} live lock(s) remain",
        r.removed.len(),
        r.remaining
    );
    Ok(0)
}
