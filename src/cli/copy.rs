//! `repo copy`: snapshots from another repository into this one.

use std::path::PathBuf;

use anyhow::{Context, Result};
use repo::ops::copy::{self, CopyRequest};
use repo::ops::select::SnapshotRef;
use repo::repository::Repository;
use zeroize::Zeroizing;

use super::context::{read_password_file, GlobalOpts, Purpose};
use super::fmt::print_json;

/// Arguments of `repo copy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Source repository (a directory, `s3:…`, `gs:…`, `azure:…`, `sftp:…`); the destination
    /// is `--repo` (or `--to`)
    #[arg(long, value_name = "LOCATION")]
    from: String,
    /// Destination repository (same as `--repo`)
    #[arg(long, value_name = "LOCATION")]
    to: Option<String>,
    /// Source password file [env: REPO_FROM_PASSWORD; default: the destination's password]
    #[arg(long, value_name = "FILE")]
    from_password_file: Option<PathBuf>,
    /// Snapshots to copy (ids, prefixes or "latest"); default: all
    #[arg(value_name = "SNAPSHOT")]
    snapshots: Vec<String>,
}

/// Copies snapshots; already copied ones are skipped.
pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let mut dst_opts = g.clone();
    if let Some(to) = &a.to {
        dst_opts.repo = Some(to.clone());
    }
    let dst = dst_opts.open(false)?;
    let mut src_opts = g.clone();
    src_opts.repo = Some(a.from.clone());
    let loc = src_opts.location()?;
    let backend = src_opts.backend(&loc)?;
    let pw: Zeroizing<Vec<u8>> = match (
        &a.from_password_file,
        std::env::var_os("REPO_FROM_PASSWORD"),
    ) {
        (Some(f), _) => read_password_file(f)?,
        (None, Some(p)) if !p.is_empty() => {
            use std::os::unix::ffi::OsStrExt;
            Zeroizing::new(p.as_bytes().to_vec())
        }
        _ => dst_opts.password(&dst_opts.location()?, Purpose::Open)?,
    };
    let mut src = Repository::open(backend, &pw, &src_opts.cache_root()?)
        .with_context(|| format!("opening source repository {}", a.from))?;
    src.set_lock_wait(g.lock_wait()?);
    let req = CopyRequest {
        snapshots: a.snapshots.into_iter().map(SnapshotRef::id).collect(),
        filter: Default::default(),
    };
    let report = copy::run(&src, &dst, &req, &g.ctx())?;
    g.journal.report(&report, false);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if g.json {
        print_json(&report)?;
    } else {
        for (from, to) in &report.copied {
            println!("copied {} → {}", &from[..8], &to[..8]);
        }
        for s in &report.skipped {
            println!("skipped {} (already in the destination)", &s[..8]);
        }
        println!(
            "{} snapshot(s) copied, {} skipped, {} oplog slice(s) copied; {} blobs, {} bytes added",
            report.copied.len(),
            report.skipped.len(),
            report.oplog_slices_copied,
            report.blobs_added,
            report.bytes_added
        );
    }
    Ok(0)
}
