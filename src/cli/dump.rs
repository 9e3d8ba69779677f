//! `repo dump`.

use std::io::Write;

use anyhow::{Context, Result};

use super::context::GlobalOpts;
use repo::ops::dump::{self, DumpRequest};
use repo::ops::select::SnapshotRef;

/// Arguments of `repo dump`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshot id (or unique prefix), or "latest" (the newest that holds PATH)
    snapshot: String,
    /// A file (written as its bytes) or a directory (written as a tar archive); "/" is
    /// the whole snapshot
    path: String,
    /// Write a tar archive even for a single file
    #[arg(long)]
    tar: bool,
    #[command(flatten)]
    select: super::snapshots::SelectArgs,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let req = DumpRequest {
        snapshot: SnapshotRef::id(a.snapshot).with_filter(a.select.filter()?),
        path: a.path,
        tar: a.tar,
    };
    let (snap, node, kind) = dump::resolve(&repo, &req)?;
    let stdout = std::io::stdout();
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
