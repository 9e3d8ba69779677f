//! `repo snapshot`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::lock::LockKind;
use repo::ops::snapshot::{self, ParentChoice, SnapshotOptions};
use repo::progress::{Display, Progress};
use repo::source::exclude::ExcludeSettings;

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
    /// Compare against this snapshot instead of the latest one of the same host and paths
    #[arg(long, conflicts_with = "force_full")]
    parent: Option<String>,
    /// Read every file, ignoring the parent snapshot (alias: --full)
    #[arg(long, alias = "full")]
    force_full: bool,
    /// Reuse unchanged files from the parent snapshot (the default; accepted for scripts)
    #[arg(long, conflicts_with = "force_full")]
    incremental: bool,
    /// Leave out paths matching this gitignore-style pattern (repeatable)
    #[arg(long = "exclude", short = 'e', value_name = "PATTERN")]
    excludes: Vec<String>,
    /// Read exclude patterns from a file, one per line (repeatable)
    #[arg(long = "exclude-file", value_name = "FILE")]
    exclude_files: Vec<PathBuf>,
    /// Leave out directories that contain a file with this name (repeatable)
    #[arg(long = "exclude-if-present", value_name = "NAME")]
    exclude_if_present: Vec<String>,
    /// Do not descend into other file systems (mount points are kept as empty directories)
    #[arg(long, short = 'x')]
    one_file_system: bool,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let mut excludes = ExcludeSettings {
        patterns: a.excludes,
        if_present: a.exclude_if_present,
        one_file_system: a.one_file_system,
    };
    for f in &a.exclude_files {
        excludes.add_file(f)?;
    }
    let parent = match (a.force_full, a.parent) {
        (true, _) => ParentChoice::None,
        (false, Some(p)) => ParentChoice::Given(p),
        (false, None) => ParentChoice::Auto,
    };
    let (repo, _lock) = g.open_locked(true, LockKind::Shared, "snapshot")?;
    let opts = SnapshotOptions {
        paths: a.paths,
        tags: a.tags,
        host: a.host,
        threads: a.threads,
        parent,
        excludes,
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
        match snap.parent {
            Some(p) => println!("snapshot {} saved (parent {})", snap.id.short(), p.short()),
            None => println!("snapshot {} saved", snap.id.short()),
        }
        println!(
            "  files: {files} ({} new, {} changed, {} unchanged, {} removed), dirs: {}, others: {}",
            s.files_new, s.files_changed, s.files_unchanged, s.files_removed, s.dirs, s.others
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
