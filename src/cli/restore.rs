//! `repo restore`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::restore::{self, RestoreOptions};
use repo::progress::{Display, Progress};

/// Arguments of `repo restore`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id (or unique prefix), or "latest"
    snapshot: String,
    /// Directory to restore into (created if missing)
    #[arg(long, short = 't')]
    target: PathBuf,
    /// Only restore this snapshot path and what is below it (repeatable)
    #[arg(long = "include", short = 'i')]
    includes: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let snap = repo.find_snapshot(&a.snapshot)?;
    if !g.json && !g.quiet {
        eprintln!(
            "restoring snapshot {} ({} UTC, {}) into {}",
            snap.id.short(),
            snap.time.format("%Y-%m-%d %H:%M:%S"),
            snap.source.description,
            a.target.display()
        );
    }
    let opts = RestoreOptions {
        target: a.target,
        includes: a.includes,
    };
    let progress = Arc::new(Progress::default());
    let display = Display::start(progress.clone(), "restoring", g.show_progress());
    let report = restore::run(&repo, &snap, &opts, &progress)?;
    drop(display);
    if g.json {
        print_json(&report)?;
    } else {
        println!(
            "restored {} files ({}), {} directories, {} other entries",
            report.files,
            bytes(report.bytes),
            report.dirs,
            report.others
        );
    }
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("error: {e}");
        }
        anyhow::bail!("{} item(s) could not be restored", report.errors.len());
    }
    Ok(0)
}
