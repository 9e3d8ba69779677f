//! Command-line interface: clap definitions and one file per verb. Each verb turns its
//! arguments into an `ops` call and prints the report; nothing here touches bytes on disk.

mod check;
pub mod context;
mod diff;
mod find;
mod fmt;
mod index;
mod init;
mod ls;
mod restore;
mod scan;
mod snapshot;
pub mod snapshots;

use clap::{Parser, Subcommand};

use context::GlobalOpts;

/// Exit code when a snapshot was written but some files could not be read.
pub const EXIT_INCOMPLETE: i32 = 3;

/// Content-addressed, deduplicating, encrypted backups of files.
#[derive(Parser, Debug)]
#[command(name = "repo", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new repository
    Init(init::Args),
    /// Back up paths into a new snapshot
    Snapshot(snapshot::Args),
    /// List snapshots
    Snapshots(snapshots::Args),
    /// List the contents of a snapshot
    Ls(ls::Args),
    /// Restore a snapshot (or part of it) into a directory
    Restore(restore::Args),
    /// Verify the repository's integrity
    Check(check::Args),
    /// Show what changed between two snapshots
    Diff(diff::Args),
    /// Find which snapshots contain paths matching a pattern
    Find(find::Args),
    /// Compare live files with a snapshot: missing, new, modified, corrupted, duplicates
    Scan(scan::Args),
    /// Manage the local index
    Index(index::Args),
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    match cli.command {
        Command::Init(a) => init::run(g, a),
        Command::Snapshot(a) => snapshot::run(g, a),
        Command::Snapshots(a) => snapshots::run(g, a),
        Command::Ls(a) => ls::run(g, a),
        Command::Restore(a) => restore::run(g, a),
        Command::Check(a) => check::run(g, a),
        Command::Diff(a) => diff::run(g, a),
        Command::Find(a) => find::run(g, a),
        Command::Scan(a) => scan::run(g, a),
        Command::Index(a) => index::run(g, a),
    }
}
