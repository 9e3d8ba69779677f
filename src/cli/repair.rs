//! `repo repair`.

use anyhow::Result;
use clap::Subcommand;

use super::context::GlobalOpts;
use super::fmt::print_json;
use repo::ops::repair::{self, RepairReport, RepairRequest};

/// Arguments of `repo repair`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: Option<What>,
    /// Also read and verify every blob (otherwise packs are judged by size and trailer)
    #[arg(long, global = true)]
    read_data: bool,
    /// Only report what would be repaired
    #[arg(long, short = 'n', global = true)]
    dry_run: bool,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Only the index: drop packs that are gone, salvage damaged ones, list unlisted ones
    Index,
    /// Only the snapshots: rewrite those that reference lost data without it
    Snapshots,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let (index, snapshots) = match a.what {
        None => (true, true),
        Some(What::Index) => (true, false),
        Some(What::Snapshots) => (false, true),
    };
    let req = RepairRequest {
        index,
        snapshots,
        read_data: a.read_data,
        dry_run: a.dry_run,
    };
    let mut repo = g.open(false)?;
    let report = repair::run(&mut repo, &req, &g.ctx())?;
    g.journal.report(&report, report.dry_run);
    if g.json {
        print_json(&report)?;
    } else {
        print_report(&report, index && !snapshots);
    }
    Ok(0)
}

fn print_report(r: &RepairReport, index_only: bool) {
    let (will, did) = if r.dry_run {
        ("would be ", "would ")
    } else {
        ("", "")
    };
    if !r.changed() && r.snapshots_unreadable.is_empty() {
        println!("nothing to repair");
        return;
    }
    for s in &r.segments_damaged {
        println!("damaged index segment: {s}");
    }
    for p in &r.packs_missing {
        println!("missing pack {p}: {will}dropped from the index");
    }
    for p in &r.packs_damaged {
        println!("damaged {p}");
    }
    println!(
        "index: {} pack(s) {will}listed again from their trailers, {} blob(s) {will}salvaged from damaged packs, {} blob(s) lost; {} segment(s) {will}written, {} {will}removed",
        r.packs_adopted, r.blobs_salvaged, r.blobs_lost, r.segments_written, r.segments_removed
    );
    for s in &r.snapshots {
        let new = s
            .replaced_by
            .map(|id| format!(", replaced by {}", id.short()))
            .unwrap_or_default();
        println!(
            "snapshot {} ({}) lost {} path(s){new}:",
            s.snapshot.short(),
            s.time.format("%Y-%m-%d %H:%M:%S"),
            s.lost_count
        );
        for p in &s.lost {
            println!("    {p}");
        }
        if s.lost_count as usize > s.lost.len() {
            println!("    … and {} more", s.lost_count as usize - s.lost.len());
        }
    }
    for s in &r.slices_removed {
        println!(
            "oplog slice {s} lost chunks: {did}remove it (point-in-time restore has a gap there)"
        );
    }
    for s in &r.snapshots_unreadable {
        println!("unreadable snapshot object {s}: remove it with `repo forget ID`");
    }
    if index_only && r.blobs_lost > 0 {
        println!("snapshots may now reference lost data: run `repo repair snapshots`");
    }
    if !r.snapshots.is_empty() && !r.dry_run {
        println!("the next snapshot of the same paths stores again every lost file it still finds");
    }
}
