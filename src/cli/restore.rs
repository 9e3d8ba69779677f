//! `repo restore`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
#[cfg(feature = "mongo")]
use repo::mongo::restore::{MongoConflict, MongoRestoreReport, MongoTarget};
use repo::ops::restore::{
    self, Action, Conflict, FilesTarget, RestoreInto, RestoreOutcome, RestoreReport, RestoreRequest,
};
use repo::ops::select::SnapshotRef;
use repo::timespec::parse_time;
use repo::tree::path::SnapPath;

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

    #[cfg(feature = "mongo")]
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
fn absolute(p: &std::ffi::OsStr) -> Result<SnapPath> {
    Ok(repo::source::fs::absolute(std::path::Path::new(p))?
        .into_os_string()
        .into())
}

/// Arguments of `repo restore`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id (or unique prefix) or "latest", then snapshot paths to restore; with
    /// --at, only paths (they also choose the source)
    #[arg(value_name = "SNAPSHOT|PATH")]
    args: Vec<std::ffi::OsString>,
    /// Restore the newest snapshot taken at or before this time (RFC 3339, local
    /// "2026-11-28 09:00", "2h ago", "yesterday"); for MongoDB with captured oplog, the
    /// state at that moment, or at exactly oplog timestamp "2026-11-28T10:16:59Z #3"
    #[arg(long)]
    at: Option<String>,
    #[command(flatten)]
    select: super::snapshots::SelectArgs,
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
    /// "/home/*/docs"), and what is below them (repeatable; a path's names need not be
    /// UTF-8, a glob's must)
    #[arg(long = "include", short = 'i')]
    includes: Vec<std::ffi::OsString>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let req = request(g, a)?;
    let repo = g.open(false)?;
    let outcome = restore::run(&repo, &req, &g.ctx())?;
    g.journal.report(&outcome, req.dry_run);
    if g.json {
        print_json(&outcome)?;
    }
    match &outcome {
        RestoreOutcome::Files(r) if !g.json => print_files(r, req.dry_run),
        #[cfg(feature = "mongo")]
        RestoreOutcome::Mongodb(r) if !g.json => print_mongo(r),
        _ => {}
    }
    if let RestoreOutcome::Files(r) = &outcome {
        for e in &r.errors {
            eprintln!("error: {e}");
        }
    }
    #[cfg(feature = "mongo")]
    if let RestoreOutcome::Mongodb(r) = &outcome {
        for e in r.incomplete().iter().flat_map(|o| &o.errors) {
            eprintln!("  {e}");
        }
    }
    match outcome.failure() {
        Some(why) => Err(repo::Error::Incomplete(why).into()),
        None => Ok(0),
    }
}

/// The arguments as a request: which snapshot (or moment), which part, into what.
fn request(g: &GlobalOpts, a: Args) -> Result<RestoreRequest> {
    let mut include: Vec<SnapPath> = a.includes.into_iter().map(SnapPath::from).collect();
    let filter = a.select.filter(g)?;
    let (snapshot, ordinal) = match &a.at {
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
            // With a time, every argument is a path (it also chooses the snapshot).
            for p in &a.args {
                include.push(absolute(p)?);
            }
            (
                SnapshotRef::at(parse_time(text, chrono::Utc::now())?),
                ordinal,
            )
        }
        None => {
            let Some((sel, paths)) = a.args.split_first() else {
                anyhow::bail!("give a snapshot id, \"latest\", or --at TIME");
            };
            include.extend(paths.iter().cloned().map(SnapPath::from));
            let sel = super::snapshots::snapshot_arg(sel.clone())?;
            (SnapshotRef::id(sel), None)
        }
    };
    let into = match a.mongodb_uri {
        #[cfg(feature = "mongo")]
        Some(uri) => RestoreInto::Mongodb(MongoTarget {
            uri: repo::mongo::uri::ConnectionString::new(uri),
            namespaces: a.namespaces,
            renames: repo::mongo::ns::Renames::parse(&a.renames, &a.ns_from, &a.ns_to)?,
            conflict: a.conflict.unwrap_or(ConflictArg::Fail).for_mongo()?,
            in_place: a.in_place,
        }),
        #[cfg(not(feature = "mongo"))]
        Some(_) => anyhow::bail!("this build has no MongoDB support (feature mongo)"),
        None => {
            if !a.namespaces.is_empty() || !a.renames.is_empty() || !a.ns_from.is_empty() {
                anyhow::bail!("--ns and --ns-rename need --mongodb-uri");
            }
            let Some(target) = a.target else {
                anyhow::bail!("give --target DIR (or --mongodb-uri URI for collections)");
            };
            RestoreInto::Files(FilesTarget {
                target,
                excludes: a.excludes,
                conflict: a.conflict.unwrap_or(ConflictArg::Overwrite).for_files()?,
                verify_existing: a.verify_existing,
                delete: a.delete,
            })
        }
    };
    Ok(RestoreRequest {
        snapshot: snapshot.with_filter(filter),
        ordinal,
        include,
        dry_run: a.dry_run,
        into,
    })
}

fn print_files(report: &RestoreReport, dry_run: bool) {
    if dry_run {
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
}

#[cfg(feature = "mongo")]
fn print_mongo(r: &MongoRestoreReport) {
    for o in &r.collections {
        if r.dry_run {
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
    if let Some(rp) = &r.replay {
        let rate = if rp.seconds > 0.0 {
            rp.applied as f64 / rp.seconds
        } else {
            0.0
        };
        println!(
            "replayed {} oplog entries ({} commands, {} documents written, {} other entries skipped) in {:.2} s ({rate:.0} entries/s){}",
            rp.applied,
            rp.commands,
            rp.documents_written,
            rp.skipped,
            rp.seconds,
            rp.last
                .map(|t| format!("; last applied {t}"))
                .unwrap_or_default()
        );
    } else if let Some(t) = r.state_as_of {
        // Without captured oplog the restored state is the snapshot's own moment.
        println!(
            "state as of the snapshot ({t}); no oplog was captured for this source \
             (`repo mongodb follow` makes every second restorable)"
        );
    }
    if r.dry_run {
        println!("dry run: nothing was written");
    }
}
