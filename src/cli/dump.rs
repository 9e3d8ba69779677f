//! `repo dump`.

use std::ffi::OsString;
use std::io::Write;

use anyhow::{Context, Result};

use super::context::GlobalOpts;
use repo::ops::dump::{self, DumpRequest};
use repo::ops::select::SnapshotRef;
use repo::tree::path::SnapPath;

/// Arguments of `repo dump`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id (or unique prefix), or "latest" (the newest that holds PATH); with
    /// --at it may be left out
    #[arg(required_unless_present = "at")]
    snapshot: Option<OsString>,
    /// A file (written as its bytes) or a directory (written as a tar archive); "/" is
    /// the whole snapshot. Names need not be UTF-8
    path: Option<OsString>,
    /// Instead of a snapshot id: the newest snapshot taken at or before this time (RFC
    /// 3339, local "2026-11-28 10:00", or "3 days ago"); for MongoDB that snapshot's
    /// state (`restore --at` replays the oplog up to the moment)
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Write a tar archive even for a single file
    #[arg(long)]
    tar: bool,
    /// Instead of a path: the collection DB.COLL of a MongoDB snapshot
    #[cfg(feature = "mongo")]
    #[arg(long, value_name = "DB.COLL", conflicts_with_all = ["path", "tar"])]
    mongodb: Option<String>,
    /// With --mongodb: jsonl (canonical extended JSON, one document per line), bson (the
    /// raw stream, as mongorestore reads it) or indexes (the index specs as JSON)
    #[cfg(feature = "mongo")]
    #[arg(long, value_enum, default_value = "jsonl", requires = "mongodb")]
    format: CollectionFormatArg,
    #[command(flatten)]
    select: super::snapshots::SelectArgs,
}

/// `--format` of a collection.
#[cfg(feature = "mongo")]
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CollectionFormatArg {
    Jsonl,
    Bson,
    Indexes,
}

/// Which snapshot, and the path: with --at the one positional is the path (or
/// "latest" then the path).
fn target(a: &mut Args) -> Result<(SnapshotRef, Option<OsString>)> {
    let Some(at) = &a.at else {
        let id = match a.snapshot.take() {
            Some(s) => super::snapshots::snapshot_arg(s)?,
            None => "latest".into(),
        };
        return Ok((SnapshotRef::id(id), a.path.take()));
    };
    let when = repo::timespec::parse_time(at, chrono::Utc::now())
        .with_context(|| format!("--at {at:?}"))?;
    let path = match (a.snapshot.take(), a.path.take()) {
        (Some(s), p) if s == "latest" => p,
        (Some(p), None) => Some(p),
        (None, p) => p,
        (Some(s), Some(_)) => {
            anyhow::bail!(
                "give a snapshot id ({}) or --at, not both",
                s.to_string_lossy()
            )
        }
    };
    Ok((SnapshotRef::at(when), path))
}

pub fn run(g: &GlobalOpts, mut a: Args) -> Result<i32> {
    let (snapshot, path) = target(&mut a)?;
    #[cfg(feature = "mongo")]
    if path.is_none() && a.mongodb.is_none() {
        anyhow::bail!("give a PATH in the snapshot, or --mongodb DB.COLL");
    }
    #[cfg(not(feature = "mongo"))]
    if path.is_none() {
        anyhow::bail!("give a PATH in the snapshot");
    }
    let repo = g.open(false)?;
    let snapshot = snapshot.with_filter(a.select.filter(g)?);
    let stdout = std::io::stdout();
    #[cfg(feature = "mongo")]
    if let Some(ns) = a.mongodb {
        use repo::ops::dump::{CollectionDump, CollectionFormat};
        let req = CollectionDump {
            snapshot,
            ns,
            format: match a.format {
                CollectionFormatArg::Jsonl => CollectionFormat::Jsonl,
                CollectionFormatArg::Bson => CollectionFormat::Bson,
                CollectionFormatArg::Indexes => CollectionFormat::Indexes,
            },
        };
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        let done = dump::collection(&repo, &req, &g.ctx(), &mut out);
        return finish(g, done, out);
    }
    let req = DumpRequest {
        snapshot,
        path: path.map_or_else(SnapPath::root, SnapPath::from),
        tar: a.tar,
    };
    let (snap, node, kind) = dump::resolve(&repo, &req)?;
    if kind == dump::DumpKind::Tar && std::io::IsTerminal::is_terminal(&stdout) {
        anyhow::bail!("refusing to write a tar archive to a terminal: redirect it (`> out.tar`) or pipe it (`| tar -x`)");
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let written = dump::write(
        &repo,
        &snap,
        node.as_ref(),
        &req.path,
        kind,
        &g.ctx(),
        &mut out,
    );
    finish(g, written, out)
}

/// Flushes the output and reports; a reader that went away (`| head`) ends it quietly.
fn finish(
    g: &GlobalOpts,
    written: repo::Result<dump::DumpReport>,
    mut out: impl Write,
) -> Result<i32> {
    match written.and_then(|r| {
        out.flush()
            .map_err(|e| repo::Error::io("writing the dump", e))
            .map(|()| r)
    }) {
        Ok(r) => {
            if g.json {
                eprintln!(
                    "{}",
                    serde_json::to_string(&r).context("encoding the report")?
                );
            }
            Ok(0)
        }
        // The reader went away (`| head`): stop quietly, as other tools do.
        Err(repo::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}
