//! `repo restore`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::restore::{self, RestoreOptions};
use repo::progress::{Display, Progress};
use repo::selection::{at_or_before, SnapshotFilter};
use repo::timespec::parse_time;

/// An absolute, normalised form of a path the user typed (it need not exist).
fn absolute_str(p: &str) -> Result<String> {
    Ok(repo::source::fs::absolute(std::path::Path::new(p))?
        .display()
        .to_string())
}

/// Arguments of `repo restore`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id (or unique prefix) or "latest", then snapshot paths to restore; with
    /// --at, only paths (they also choose the source)
    #[arg(value_name = "SNAPSHOT|PATH")]
    args: Vec<String>,
    /// Restore the newest snapshot taken at or before this time (RFC 3339, local
    /// "2026-11-28 09:00", "2h ago", "yesterday")
    #[arg(long)]
    at: Option<String>,
    /// With --at: only snapshots of this host (repeatable)
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// With --at: only snapshots with this tag (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Directory to restore into (created if missing)
    #[arg(long, short = 't')]
    target: PathBuf,
    /// Only restore this snapshot path and what is below it (repeatable)
    #[arg(long = "include", short = 'i')]
    includes: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let mut includes = a.includes;
    let snap = match &a.at {
        Some(at) => {
            let at = parse_time(at, chrono::Utc::now())?;
            let paths: Vec<String> = a
                .args
                .iter()
                .map(|p| absolute_str(p))
                .collect::<Result<_>>()?;
            let filter = SnapshotFilter {
                hosts: a.hosts,
                paths: paths.clone(),
                tags: a.tags,
                ..Default::default()
            };
            includes.extend(paths);
            at_or_before(filter.apply(repo.snapshots()?), at)?
        }
        None => {
            let Some((sel, paths)) = a.args.split_first() else {
                anyhow::bail!("give a snapshot id, \"latest\", or --at TIME");
            };
            if !a.hosts.is_empty() || !a.tags.is_empty() {
                anyhow::bail!(
                    "--host and --tag choose a snapshot with --at; here the snapshot is given"
                );
            }
            includes.extend(paths.iter().cloned());
            repo.find_snapshot(sel)?
        }
    };
    if !g.quiet {
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
        includes,
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
