//! `repo mount`.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::context::GlobalOpts;
use repo::mount::{self, MountRequest};

/// Arguments of `repo mount`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// An existing empty directory to show the snapshots in (read-only); runs until
    /// SIGINT/SIGTERM or `fusermount3 -u MOUNTPOINT`
    mountpoint: std::path::PathBuf,
    /// Let other users read the mount (needs user_allow_other in /etc/fuse.conf)
    #[arg(long)]
    allow_other: bool,
    #[command(flatten)]
    filter: super::snapshots::FilterArgs,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = Arc::new(g.open(false)?);
    let req = MountRequest {
        mountpoint: a.mountpoint,
        filter: a.filter.filter(g)?,
        allow_other: a.allow_other,
    };
    let ctx = g.ctx();
    let report = mount::run(repo, &req, &ctx)?;
    if g.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("encoding the report")?
        );
    } else if !g.quiet {
        eprintln!(
            "unmounted {}: {} reads, {} chunks ({}) fetched",
            report.mountpoint.display(),
            report.reads,
            report.chunks_fetched,
            super::fmt::bytes(report.bytes_fetched)
        );
    }
    Ok(0)
}
