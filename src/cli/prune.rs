//! `repo prune`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::prune::{self, PruneReport, PruneRequest};

/// Options of prune, shared with `forget --prune`.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Rewrite packs with more than this share of unused space ("5%", "0.05", "100%" to
    /// only delete packs that are entirely unused)
    #[arg(long, default_value = "5%", value_name = "PERCENT")]
    max_unused: String,
    /// Delete packs marked unneeded only after this long (marked by an earlier prune), so a
    /// writer on another host that still uses one can keep it; "0" deletes at once (only
    /// when no other host uses the repository)
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    grace: String,
}

/// Arguments of `repo prune`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    prune: PruneArgs,
    /// Only report what would be deleted and rewritten
    #[arg(long, short = 'n')]
    dry_run: bool,
}

impl PruneArgs {
    /// The prune request these flags describe.
    pub fn request(&self, dry_run: bool) -> Result<PruneRequest> {
        let grace = if self.grace.trim() == "0" {
            std::time::Duration::ZERO
        } else {
            repo::timespec::parse_duration(&self.grace)
                .ok()
                .and_then(|d| d.to_std().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--grace {:?}: expected a duration like 1h, 30m or 0",
                        self.grace
                    )
                })?
        };
        Ok(PruneRequest {
            max_unused: PruneRequest::parse_max_unused(&self.max_unused)?,
            dry_run,
            grace,
        })
    }
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let req = a.prune.request(a.dry_run)?;
    let repo = g.open(false)?;
    let report = prune::run(&repo, &req, &g.ctx())?;
    g.journal.report(&report, req.dry_run);
    if g.json {
        print_json(&report)?;
    } else {
        print_report(&report, req.dry_run);
    }
    Ok(0)
}

/// Prints a prune report as text.
pub fn print_report(r: &PruneReport, dry_run: bool) {
    println!(
        "prune{}: {} snapshot(s) kept; {} pack(s) ({}) examined",
        if dry_run { " (dry run)" } else { "" },
        r.snapshots,
        r.packs_before,
        bytes(r.bytes_before)
    );
    println!(
        "  mark {} unused pack(s), {} unindexed pack(s); rewrite {} pack(s) ({} live blob(s) copied into {} new pack(s))",
        r.packs_deleted, r.packs_unindexed, r.packs_rewritten, r.blobs_copied, r.packs_written
    );
    if r.packs_adopted > 0 {
        println!(
            "  {} unlisted pack(s) held live blobs and were listed again",
            r.packs_adopted
        );
    }
    println!(
        "  {} {}deleted ({} pack(s)); {} in {} marked pack(s) left for a prune after the {} grace period",
        bytes(r.bytes_removed),
        if dry_run { "would be " } else { "" },
        r.packs_removed,
        bytes(r.bytes_pending),
        r.packs_pending,
        repo::timespec::format_duration(std::time::Duration::from_secs(r.grace_secs)),
    );
    println!(
        "  {} blob(s) dropped; index segments {} -> {}; {} left unused in kept packs",
        r.blobs_removed,
        r.segments_before,
        r.segments_after,
        bytes(r.bytes_unused_kept)
    );
    println!(
        "  {} {}freed in {:.1}s",
        bytes(r.bytes_freed),
        if dry_run { "would be " } else { "" },
        r.duration_secs
    );
}
