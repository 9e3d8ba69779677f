//! `repo snapshot`.

use std::path::PathBuf;

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::snapshot::{self, MongoSourceRequest, ParentChoice, SnapshotRequest};
use repo::source::exclude::ExcludeSettings;

/// Arguments of `repo snapshot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files and directories to back up, and/or a MongoDB connection string
    /// (mongodb://user:pass@host:27017/?authSource=admin)
    #[arg(required_unless_present = "mongodb_uri", value_name = "PATH|URI")]
    paths: Vec<PathBuf>,
    /// Back up this MongoDB server's collections too (credentials are never stored)
    #[arg(
        long,
        value_name = "URI",
        env = "REPO_MONGODB_URI",
        hide_env_values = true
    )]
    mongodb_uri: Option<String>,
    /// Only this database (repeatable; default: all but admin, local, config)
    #[arg(long = "db", value_name = "DB")]
    dbs: Vec<String>,
    /// Only this collection, as db.collection (repeatable)
    #[arg(long = "collection", value_name = "DB.COLL")]
    collections: Vec<String>,
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
    /// Print what would be backed up (files new, changed and unchanged against the
    /// parent, bytes to read, what cannot be read), with the excludes applied; read no
    /// file content and write nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
}

impl Args {
    /// Whether this is `--dry-run` (it writes nothing, not even the operation log).
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let dry = a.dry_run;
    let req = request(a)?;
    if dry {
        return dry_run(g, &req);
    }
    let repo = g.open(true)?;
    let snap = snapshot::run(&repo, &req, &g.ctx())?;
    g.journal.report(&snap, false);
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
    if !s.changed_during_read.is_empty() {
        eprintln!(
            "warning: {} file(s) changed while being read; saved as read, which may mix old and new content:",
            s.changed_during_read.len()
        );
        for p in &s.changed_during_read {
            eprintln!("  {p}");
        }
    }
    let (sockets, unread): (Vec<_>, Vec<_>) = s
        .skipped
        .iter()
        .partition(|k| k.error == snapshot::SOCKET_SKIPPED);
    for k in &sockets {
        eprintln!("note: {}: {}", k.path, k.error);
    }
    if !unread.is_empty() {
        eprintln!(
            "warning: {} item(s) could not be read and are not in the snapshot:",
            unread.len()
        );
        for k in &unread {
            eprintln!("  {}: {}", k.path, k.error);
        }
        return Ok(super::exit::INCOMPLETE);
    }
    Ok(0)
}

/// `--dry-run`: the walk's counts; exit 3 (incomplete) when something could not be read.
fn dry_run(g: &GlobalOpts, req: &SnapshotRequest) -> Result<i32> {
    let repo = g.open(false)?;
    let r = snapshot::dry_run(&repo, req, &g.ctx())?;
    if g.json {
        print_json(&r)?;
    } else {
        match r.parent {
            Some(p) => println!("dry run: nothing written (parent {})", p.short()),
            None => println!("dry run: nothing written (no parent: every file would be read)"),
        }
        println!(
            "  files: {} new, {} changed, {} unchanged, {} removed; dirs: {}, others: {}",
            r.files_new, r.files_changed, r.files_unchanged, r.files_removed, r.dirs, r.others
        );
        println!(
            "  would read {} (at most that added, before deduplication and compression); {} unchanged",
            bytes(r.bytes_to_read),
            bytes(r.bytes_unchanged)
        );
        if req.mongodb.is_some() {
            println!("  MongoDB collections are always read (and counted above without sizes)");
        }
    }
    let unread: Vec<_> = r
        .skipped
        .iter()
        .filter(|k| k.error != snapshot::SOCKET_SKIPPED)
        .collect();
    if !unread.is_empty() {
        eprintln!("warning: {} item(s) could not be read:", unread.len());
        for k in &unread {
            eprintln!("  {}: {}", k.path, k.error);
        }
        return Ok(super::exit::INCOMPLETE);
    }
    Ok(0)
}

/// The arguments as a request.
fn request(a: Args) -> Result<SnapshotRequest> {
    let parent = match (a.force_full, a.parent) {
        (true, _) => ParentChoice::None,
        (false, Some(p)) => ParentChoice::Given(p),
        (false, None) => ParentChoice::Auto,
    };
    // A positional mongodb:// argument is the server, like --mongodb-uri.
    let mut uri = a.mongodb_uri;
    let mut paths = Vec::new();
    for p in a.paths {
        let text = p.to_string_lossy();
        if text.starts_with("mongodb://") || text.starts_with("mongodb+srv://") {
            if uri.replace(text.to_string()).is_some() {
                anyhow::bail!("give one MongoDB connection string per snapshot");
            }
        } else {
            paths.push(p);
        }
    }
    if uri.is_none() && !(a.dbs.is_empty() && a.collections.is_empty()) {
        anyhow::bail!("--db and --collection need a MongoDB connection string (--mongodb-uri)");
    }
    Ok(SnapshotRequest {
        paths,
        mongodb: uri.map(|u| MongoSourceRequest {
            uri: repo::mongo::uri::ConnectionString::new(u),
            dbs: a.dbs,
            collections: a.collections,
        }),
        tags: a.tags,
        host: a.host,
        threads: a.threads,
        parent,
        excludes: ExcludeSettings {
            patterns: a.excludes,
            if_present: a.exclude_if_present,
            one_file_system: a.one_file_system,
        },
        exclude_files: a.exclude_files,
    })
}
