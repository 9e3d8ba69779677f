//! Command-line interface: clap definitions and one file per verb. Each verb turns its
//! arguments into an `ops` call and prints the report; nothing here touches bytes on disk.

mod check;
pub mod context;
mod copy;
mod diff;
mod docs;
mod dump;
pub mod exit;
mod find;
mod fmt;
mod forget;
mod index;
mod init;
mod journal;
mod key;
pub mod log;
mod ls;
#[cfg(feature = "mongo")]
mod mongodb;
#[cfg(feature = "mount")]
mod mount;
mod plans;
mod progress;
mod prune;
mod repair;
mod restore;
mod scan;
mod serve;
mod settings;
mod snapshot;
pub mod snapshots;
mod stats;
mod storage;
mod unlock;

use clap::{Parser, Subcommand};

use context::GlobalOpts;

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
    /// Back up paths into a new snapshot (also `repo backup`)
    #[command(visible_alias = "backup")]
    Snapshot(snapshot::Args),
    /// List snapshots
    Snapshots(snapshots::Args),
    /// List the contents of a snapshot
    Ls(ls::Args),
    /// Restore a snapshot (or part of it) into a directory
    Restore(restore::Args),
    /// Write a file of a snapshot to stdout, or a directory as a tar archive
    Dump(dump::Args),
    /// Show snapshots as a read-only file system (FUSE) until interrupted
    #[cfg(feature = "mount")]
    Mount(mount::Args),
    /// Verify the repository's integrity
    Check(check::Args),
    /// Show what changed between two snapshots
    Diff(diff::Args),
    /// Find which snapshots contain paths matching a pattern
    Find(find::Args),
    /// Compare live files with a snapshot: missing, new, modified, corrupted, duplicates
    Scan(scan::Args),
    /// Remove snapshots by id or by a retention policy
    Forget(forget::Args),
    /// Reclaim the space of data no snapshot needs
    Prune(prune::Args),
    /// Manage the local index
    Index(index::Args),
    /// Make a damaged repository consistent: drop what is lost, salvage what is intact
    Repair(repair::Args),
    /// Manage the passwords (keys) that open the repository
    Key(key::Args),
    /// Storage usage: dedup and compression ratios, reclaimable space, per-snapshot sizes
    Stats(stats::Args),
    /// Show or change repository settings (quota, stored retention policy)
    Settings(settings::SettingsArgs),
    /// List the repository's locks (who is using it)
    Locks,
    /// Remove stale locks left by crashed processes
    Unlock(unlock::UnlockArgs),
    /// Copy snapshots from another repository into this one (only missing data moves)
    Copy(copy::Args),
    /// Check the config file (repositories, plans, notifications)
    Config(plans::ConfigArgs),
    /// List the config file's plans: repository, sources, schedule, last and next run
    Plans,
    /// Run a plan: snapshot, copies, retention, check, with its hooks and notifications
    Run(plans::RunArgs),
    /// The plan runs this host remembers (newest last)
    History(plans::HistoryArgs),
    /// One run: what, when, each step, hooks, notifications, error
    Status(plans::StatusArgs),
    /// MongoDB point-in-time recovery: capture the oplog (follow), show what is restorable
    #[cfg(feature = "mongo")]
    Mongodb(mongodb::Args),
    /// Run the service: plans on their schedules, the HTTP API, metrics
    Serve(serve::ServeArgs),
    /// Manage the service's API tokens
    Token(serve::TokenArgs),
    /// Print shell completions for bash, zsh, fish, powershell or elvish
    Completions(docs::CompletionsArgs),
    /// Write man pages (repo.1 and one per command) into a directory
    Man(docs::ManArgs),
}

impl Command {
    /// The operation-log kind of commands that change a repository or act for a user on
    /// it; `None` for readers (and for `run`, which logs itself with its steps).
    fn logged_kind(&self) -> Option<&'static str> {
        Some(match self {
            Command::Snapshot(a) if !a.is_dry_run() => "snapshot",
            Command::Restore(_) => "restore",
            Command::Check(_) => "check",
            Command::Forget(_) => "forget",
            Command::Prune(_) => "prune",
            Command::Copy(_) => "copy",
            Command::Repair(_) => "repair",
            Command::Unlock(_) => "unlock",
            Command::Key(a) if a.changes() => "key",
            Command::Settings(a) if a.changes() => "settings",
            Command::Index(a) if a.changes() => "index",
            #[cfg(feature = "mongo")]
            Command::Mongodb(a) if a.is_follow() => "follow",
            _ => return None,
        })
    }
}

impl Cli {
    /// Whether the command already printed its JSON report (a failure after it, such as
    /// `check` finding damage, then adds no second document).
    pub fn printed_json() -> bool {
        fmt::printed()
    }

    /// Whether output is JSON (`--json`): errors are then a JSON object on stdout too.
    pub fn wants_json(&self) -> bool {
        self.global.json
    }

    /// Starts logging: the service logs its events at info (human or JSON); every other
    /// command warnings and errors, more with `-v`/`--log-level`, to `--log-file` if given.
    pub fn init_log(&self) -> anyhow::Result<()> {
        let g = &self.global;
        match &self.command {
            Command::Serve(a) => {
                log::init_service(a.log_format == serve::LogFormat::Json);
                Ok(())
            }
            _ => log::init(
                log::level(g.verbose, g.log_level.as_deref())?,
                g.log_file.as_deref(),
            ),
        }
    }
}

/// Runs the parsed command and records it in the operation log; returns the exit code.
pub fn run(mut cli: Cli) -> anyhow::Result<i32> {
    cli.global.check_args()?;
    cli.global.apply_plan()?;
    // `-q` on a command that does something prints nothing on success: its summary on
    // stdout goes nowhere (errors and warnings still reach stderr). Commands whose output
    // is the point (ls, dump, snapshots, …) still print it.
    let doer = cli.command.logged_kind().is_some()
        || matches!(cli.command, Command::Init(_) | Command::Run(_));
    if cli.global.quiet && !cli.global.json && doer {
        silence_stdout()?;
    }
    let Some(kind) = cli.command.logged_kind() else {
        return dispatch(&cli.global, cli.command);
    };
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut rec = repo::journal::Record::start(kind, &args);
    rec.plan = cli.global.plan.clone();
    let outcome = dispatch(&cli.global, cli.command);
    journal::record(&cli.global, rec, &outcome);
    outcome
}

/// Points stdout at /dev/null.
fn silence_stdout() -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| anyhow::anyhow!("opening /dev/null: {e}"))?;
    nix::unistd::dup2(null.as_raw_fd(), 1).map_err(|e| anyhow::anyhow!("--quiet: {e}"))?;
    Ok(())
}

fn dispatch(g: &GlobalOpts, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Init(a) => init::run(g, a),
        Command::Config(a) => plans::config(g, a),
        Command::Plans => plans::plans(g),
        Command::Run(a) => plans::run(g, a),
        Command::History(a) => plans::history(g, a),
        Command::Status(a) => plans::status(g, a),
        Command::Snapshot(a) => snapshot::run(g, a),
        Command::Snapshots(a) => snapshots::run(g, a),
        Command::Ls(a) => ls::run(g, a),
        Command::Restore(a) => restore::run(g, a),
        Command::Dump(a) => dump::run(g, a),
        #[cfg(feature = "mount")]
        Command::Mount(a) => mount::run(g, a),
        Command::Check(a) => check::run(g, a),
        Command::Diff(a) => diff::run(g, a),
        Command::Find(a) => find::run(g, a),
        Command::Scan(a) => scan::run(g, a),
        Command::Forget(a) => forget::run(g, a),
        Command::Prune(a) => prune::run(g, a),
        Command::Index(a) => index::run(g, a),
        Command::Repair(a) => repair::run(g, a),
        Command::Key(a) => key::run(g, a),
        Command::Stats(a) => stats::run(g, a),
        Command::Settings(a) => settings::run(g, a),
        Command::Locks => unlock::run_list(g),
        Command::Unlock(a) => unlock::run_unlock(g, a),
        Command::Copy(a) => copy::run(g, a),
        Command::Serve(a) => serve::serve(g, a),
        Command::Token(a) => serve::token(g, a),
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
        #[cfg(feature = "mongo")]
        Command::Mongodb(a) => mongodb::run(g, a),
    }
}
