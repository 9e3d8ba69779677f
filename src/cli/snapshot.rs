//! `repo snapshot`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::snapshot::{self, SnapshotOptions};
use repo::progress::{Display, Progress};

/// Arguments of `repo snapshot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files and directories to back up
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Record this host name instead of the machine's
    #[arg(long)]
    host: Option<String>,
    /// Worker threads per pipeline stage [default: number of cores]
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(true)?;
    let opts = SnapshotOptions {
        paths: a.paths,
        tags: a.tags,
        host: a.host,
        threads: a.threads,
    };
    let progress = Arc::new(Progress::default());
    let display = Display::start(progress.clone(), "backing up", g.show_progress());
    let snap = snapshot::run(&repo, &opts, progress)?;
    drop(display);
    let s = &snap.summary;
    if g.json {
        print_json(&snap)?;
    } else {
        let files = s.files_new + s.files_changed + s.files_unchanged;
        println!("snapshot {} saved", snap.id.short());
        println!(
            "  files: {files} ({} new, {} changed, {} unchanged), dirs: {}, others: {}",
            s.files_new, s.files_changed, s.files_unchanged, s.dirs, s.others
        );
        println!(
            "  read {} of {} in {:.1}s; added {} to the repository ({} before compression)",
            bytes(s.bytes_read),
            bytes(s.total_bytes),
            s.duration_secs,
            bytes(s.bytes_added),
            bytes(s.bytes_added_raw)
        );
    }
    if !s.skipped.is_empty() {
        eprintln!(
            "warning: {} item(s) could not be read and are not in the snapshot:",
            s.skipped.len()
        );
        for k in &s.skipped {
            eprintln!("  {}: {}", k.path, k.error);
        }
        return Ok(super::EXIT_INCOMPLETE);
    }
    Ok(0)
}
