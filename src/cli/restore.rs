//! `repo restore`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::lock::LockKind;
use repo::ops::restore::mongo::{MongoConflict, MongoRestoreOptions};
use repo::ops::restore::{self, Action, Conflict, RestoreOptions};
use repo::progress::{Display, Progress};
use repo::selection::{at_or_before, SnapshotFilter};
use repo::timespec::parse_time;

/// `--conflict` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ConflictArg {
    /// Keep existing files
    Skip,
    /// Replace existing files that differ
    Overwrite,
    /// Replace only when the snapshot's copy is newer
    IfNewer,
    /// Replace only when the content differs (hashes same-size files)
    IfChanged,
    /// Keep existing files and restore next to them as NAME.restored
    Rename,
    /// MongoDB: drop an existing target collection first
    Drop,
    /// MongoDB: refuse, before writing anything, when a target collection exists
    Fail,
}

impl ConflictArg {
    fn for_files(self) -> Result<Conflict> {
        Ok(match self {
            ConflictArg::Skip => Conflict::Skip,
            ConflictArg::Overwrite => Conflict::Overwrite,
            ConflictArg::IfNewer => Conflict::IfNewer,
            ConflictArg::IfChanged => Conflict::IfChanged,
            ConflictArg::Rename => Conflict::Rename,
            ConflictArg::Drop | ConflictArg::Fail => anyhow::bail!(
                "--conflict drop/fail apply to MongoDB restores; for files use skip, overwrite, if-newer, if-changed or rename"
            ),
        })
    }

    fn for_mongo(self) -> Result<MongoConflict> {
        Ok(match self {
            ConflictArg::Skip => MongoConflict::Skip,
            ConflictArg::Overwrite => MongoConflict::Overwrite,
            ConflictArg::Drop => MongoConflict::Drop,
            ConflictArg::Fail => MongoConflict::Fail,
            _ => anyhow::bail!("for a MongoDB restore --conflict is skip, overwrite, drop or fail"),
        })
    }
}

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
    /// "2026-11-28 09:00", "2h ago", "yesterday"); for MongoDB with captured oplog, the
    /// state at that moment, or at exactly oplog timestamp "2026-11-28T10:16:59Z #3"
    #[arg(long)]
    at: Option<String>,
    /// With --at: only snapshots of this host (repeatable)
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// With --at: only snapshots with this tag (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Leave out entries matching this glob and everything below them (repeatable;
    /// without "/" it matches names, with "/" whole snapshot paths)
    #[arg(long = "exclude", short = 'e', value_name = "GLOB")]
    excludes: Vec<String>,
    /// What to do with existing files that differ from the snapshot [default: overwrite], or
    /// with existing target collections [default: fail]
    #[arg(long, value_enum)]
    conflict: Option<ConflictArg>,
    /// Hash existing files whose size and mtime match before leaving them alone
    #[arg(long)]
    verify_existing: bool,
    /// Print what would be created, overwritten, skipped or renamed, and write nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Remove files and directories from the target that the snapshot does not have (only
    /// inside the restored paths; entries matching --exclude are kept)
    #[arg(long)]
    delete: bool,
    /// Directory to restore into (created if missing)
    #[arg(long, short = 't', required_unless_present = "mongodb_uri")]
    target: Option<PathBuf>,
    /// Restore the snapshot's MongoDB collections into this server instead of files
    #[arg(long, value_name = "URI", conflicts_with = "target")]
    mongodb_uri: Option<String>,
    /// MongoDB: only namespaces matching this glob ("app.users", "app.*"; repeatable)
    #[arg(long = "ns", value_name = "GLOB")]
    namespaces: Vec<String>,
    /// MongoDB: restore under another name, "FROM:TO" with an optional '*' on both sides
    /// ("app.*:app_restored.*"; repeatable, first match wins); a ':' inside a name is
    /// written '\:' (a '\' as '\\')
    #[arg(long = "ns-rename", value_name = "FROM:TO")]
    renames: Vec<String>,
    /// MongoDB: restore FROM (a namespace, '*' allowed) under the name of the matching
    /// --ns-to; no escaping needed (repeatable, in pairs)
    #[arg(long = "ns-from", value_name = "NS")]
    ns_from: Vec<String>,
    /// MongoDB: the new name for the --ns-from at the same position
    #[arg(long = "ns-to", value_name = "NS")]
    ns_to: Vec<String>,
    /// MongoDB: with rename rules, allow collections no rule covers to be written back
    /// into the server the snapshot was taken from
    #[arg(long)]
    in_place: bool,
    /// Only restore this snapshot path, or entries matching this glob ("*.pdf",
    /// "/home/*/docs"), and what is below them (repeatable)
    #[arg(long = "include", short = 'i')]
    includes: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let (repo, _lock) = g.open_locked(false, LockKind::Shared, "restore")?;
    let mut includes = a.includes;
    let mut at_time = None;
    let mut at_exact = None;
    let snap = match &a.at {
        Some(at) => {
            // "TIME #N" (as `repo mongodb coverage` prints): exactly oplog timestamp (TIME, N).
            let (text, ordinal) = match at.rsplit_once(" #") {
                Some((t, n)) => {
                    let n: u32 = n
                        .trim()
                        .parse()
                        .with_context(|| format!("--at {at:?}: expected TIME #ORDINAL"))?;
                    (t, Some(n))
                }
                None => (at.as_str(), None),
            };
            let at = parse_time(text, chrono::Utc::now())?;
            if let Some(i) = ordinal {
                anyhow::ensure!(
                    a.mongodb_uri.is_some() && at.timestamp_subsec_nanos() == 0,
                    "--at TIME #ORDINAL names an oplog timestamp: a whole second, with --mongodb-uri"
                );
                at_exact = Some(repo::snapshot::ClusterTime {
                    t: at.timestamp().clamp(0, i64::from(u32::MAX)) as u32,
                    i,
                });
            }
            at_time = Some(at);
            let paths: Vec<String> = a
                .args
                .iter()
                .map(|p| absolute_str(p))
                .collect::<Result<_>>()?;
            let filter = SnapshotFilter {
                hosts: a.hosts,
                paths: paths.clone(),
                tags: a.tags,
                // Restoring collections: only snapshots that hold some.
                source: a.mongodb_uri.as_ref().map(|_| "mongodb".to_string()),
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
    if let Some(uri) = a.mongodb_uri {
        // Decided before anything is written: a moment the oplog does not cover is refused.
        let roll = match at_time {
            Some(at) => repo::ops::restore::mongo_at::plan_at(&repo, &snap, at, at_exact)?,
            None => None,
        };
        let renames = repo::source::mongodb::ns::Renames::parse(&a.renames, &a.ns_from, &a.ns_to)?;
        let opts = MongoRestoreOptions {
            uri,
            namespaces: a.namespaces,
            renames,
            conflict: a.conflict.unwrap_or(ConflictArg::Fail).for_mongo()?,
            in_place: a.in_place,
            dry_run: a.dry_run,
            replayed: Vec::new(),
        };
        return restore_mongo(g, &repo, &snap, roll, opts);
    }
    if !a.namespaces.is_empty() || !a.renames.is_empty() || !a.ns_from.is_empty() {
        anyhow::bail!("--ns and --ns-rename need --mongodb-uri");
    }
    let Some(target) = a.target else {
        anyhow::bail!("give --target DIR (or --mongodb-uri URI for collections)");
    };
    if !g.quiet {
        eprintln!(
            "restoring snapshot {} ({} UTC, {}) into {}",
            snap.id.short(),
            snap.time.format("%Y-%m-%d %H:%M:%S"),
            snap.source.description,
            target.display()
        );
    }
    let opts = RestoreOptions {
        target,
        includes,
        excludes: a.excludes,
        conflict: a.conflict.unwrap_or(ConflictArg::Overwrite).for_files()?,
        verify_existing: a.verify_existing,
        dry_run: a.dry_run,
        delete: a.delete,
    };
    let progress = Arc::new(Progress::default());
    let display = Display::start(progress.clone(), "restoring", g.show_progress());
    let report = restore::run(&repo, &snap, &opts, &progress)?;
    drop(display);
    if g.json {
        print_json(&report)?;
    } else if opts.dry_run {
        for f in &report.plan {
            let what = match &f.action {
                Action::Create => "create".to_string(),
                Action::Overwrite => "overwrite".to_string(),
                Action::UpToDate => "up to date".to_string(),
                Action::Skip => "skip (exists)".to_string(),
                Action::Rename(p) => format!("restore as {}", p.display()),
                Action::Delete => "delete".to_string(),
            };
            println!("{what:<14} {} ({})", f.path, bytes(f.bytes));
        }
        println!(
            "dry run: would write {} files ({}); {} up to date, {} skipped, {} overwritten, {} renamed, {} deleted",
            report.files,
            bytes(report.bytes),
            report.up_to_date,
            report.skipped,
            report.overwritten,
            report.renamed,
            report.deleted
        );
    } else {
        println!(
            "restored {} files ({}), {} directories, {} other entries; {} up to date, {} skipped, {} renamed, {} deleted",
            report.files,
            bytes(report.bytes),
            report.dirs,
            report.others,
            report.up_to_date,
            report.skipped,
            report.renamed,
            report.deleted
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

/// `repo restore --mongodb-uri`: collections into a server.
fn restore_mongo(
    g: &GlobalOpts,
    repo: &repo::repository::Repository,
    snap: &repo::snapshot::Snapshot,
    roll: Option<repo::ops::restore::mongo_at::RollForward>,
    mut opts: MongoRestoreOptions,
) -> Result<i32> {
    if !g.quiet {
        eprintln!(
            "restoring collections of snapshot {} ({} UTC, {}) into {}",
            snap.id.short(),
            snap.time.format("%Y-%m-%d %H:%M:%S"),
            snap.source.description,
            repo::source::mongodb::redact(&opts.uri)
        );
    }
    if let Some(rf) = &roll {
        repo::ops::restore::mongo_at::prepare_target(repo, snap, rf, &mut opts)?;
    }
    let outcomes = repo::ops::restore::mongo::run(repo, snap, &opts)?;
    let incomplete: Vec<&repo::ops::restore::mongo::CollectionOutcome> = outcomes
        .iter()
        .filter(|o| !o.complete && !opts.dry_run)
        .collect();
    let mut replay = None;
    if let Some(rf) = roll.as_ref().filter(|_| incomplete.is_empty()) {
        if !g.quiet {
            eprintln!(
                "rolling forward from the snapshot's cluster time {} through {} oplog slice(s)",
                super::mongodb::show(rf.base),
                rf.parts.len()
            );
        }
        if !opts.dry_run {
            replay = Some(repo::ops::restore::mongo_at::roll_forward(
                repo,
                rf,
                &opts.uri,
                &opts.namespaces,
                &opts.renames,
            )?);
        }
    }
    if g.json {
        if roll.is_some() {
            print_json(&serde_json::json!({"collections": outcomes, "replay": replay}))?;
        } else {
            print_json(&outcomes)?;
        }
    } else {
        print_mongo_outcomes(&outcomes, opts.dry_run);
        if let Some(r) = &replay {
            print_replay(r);
        } else if roll.is_none() && snap.mongodb.is_some() {
            if let Some(at) = at_hint(snap) {
                println!("{at}");
            }
        }
        if opts.dry_run {
            println!("dry run: nothing was written");
        }
    }
    if !incomplete.is_empty() {
        for o in &incomplete {
            for e in &o.errors {
                eprintln!("  {e}");
            }
        }
        let done: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.complete)
            .map(|o| o.target.as_str())
            .collect();
        let failed: Vec<&str> = incomplete.iter().map(|o| o.source.as_str()).collect();
        anyhow::bail!(
            "{} collection(s) not completely restored: {}; completed: {}; to resume, restore \
             again with {}{}",
            incomplete.len(),
            failed.join(", "),
            if done.is_empty() {
                "none".to_string()
            } else {
                done.join(", ")
            },
            failed
                .iter()
                .map(|ns| format!("--ns '{ns}' "))
                .collect::<String>(),
            "--conflict drop (after fixing the cause above)"
        );
    }
    Ok(0)
}

fn print_mongo_outcomes(outcomes: &[repo::ops::restore::mongo::CollectionOutcome], dry_run: bool) {
    for o in outcomes {
        if dry_run {
            println!(
                "{} -> {} ({}): {}; {} document(s)",
                o.source, o.target, o.kind, o.action, o.documents
            );
        } else {
            let failed = if o.failed > 0 {
                format!(", {} FAILED", o.failed)
            } else {
                String::new()
            };
            println!(
                "{} -> {}: {} inserted, {} replaced, {} kept{failed}, {} index(es)",
                o.source, o.target, o.inserted, o.replaced, o.skipped, o.indexes
            );
        }
    }
}

fn print_replay(r: &repo::oplog::replay::ReplayStats) {
    let rate = if r.seconds > 0.0 {
        r.applied as f64 / r.seconds
    } else {
        0.0
    };
    println!(
        "replayed {} oplog entries ({} commands, {} documents written, {} other entries skipped) in {:.2} s ({rate:.0} entries/s){}",
        r.applied,
        r.commands,
        r.documents_written,
        r.skipped,
        r.seconds,
        r.last
            .map(|t| format!("; last applied {}", super::mongodb::show(t)))
            .unwrap_or_default()
    );
}

/// Without captured oplog the restored state is the snapshot's own moment: say which.
fn at_hint(snap: &repo::snapshot::Snapshot) -> Option<String> {
    let t = snap.mongodb.as_ref()?.cluster_time?;
    Some(format!(
        "state as of the snapshot ({}); no oplog was captured for this source \
         (`repo mongodb follow` makes every second restorable)",
        super::mongodb::show(t)
    ))
}
