//! `repo check`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json};
use repo::ops::check::{self, CheckRequest, DataSubset, Severity};

/// Arguments of `repo check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also read, decrypt and re-hash every blob of every pack
    #[arg(long)]
    read_data: bool,
    /// Read only some packs in full: a percentage chosen at random ("10%"), group n of t
    /// ("2/5": run 1/5 … 5/5 to cover everything once), or a size ("5GiB", at random)
    #[arg(long, value_name = "SUBSET", value_parser = parse_subset, conflicts_with = "read_data")]
    read_data_subset: Option<DataSubset>,
}

fn parse_subset(s: &str) -> Result<DataSubset, String> {
    DataSubset::parse(s).map_err(|e| e.to_string())
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let req = CheckRequest {
        read_data: a.read_data,
        read_data_subset: a.read_data_subset,
    };
    let report = check::run(&repo, &req, &g.ctx())?;
    g.journal.report(&report, false);
    if g.json {
        print_json(&report)?;
    } else {
        println!(
            "checked {} snapshots, {} trees, {} packs, {} blobs{}{}",
            report.snapshots,
            report.trees,
            report.packs,
            report.blobs,
            if report.slices > 0 {
                format!(", {} oplog slices", report.slices)
            } else {
                String::new()
            },
            if a.read_data || a.read_data_subset.is_some() {
                format!(
                    ", read {} in {} packs",
                    bytes(report.bytes_read),
                    report.packs_read
                )
            } else {
                String::new()
            }
        );
        if report.packs_in_flight > 0 {
            println!(
                "note: {} pack(s) were being written by runs beside this check (checked next time)",
                report.packs_in_flight
            );
        }
        for f in &report.findings {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!("{sev}: {}", f.message);
            if !f.snapshots.is_empty() && f.pack.is_some() {
                println!("    affects snapshots: {}", f.snapshots.join(", "));
            }
            for p in &f.paths {
                println!("    {p}");
            }
            println!("    fix: {}", f.fix);
        }
    }
    let errors = report.errors();
    if errors > 0 {
        anyhow::bail!(repo::Error::Corrupt {
            what: "repository".into(),
            detail: format!("check found {errors} error(s)"),
        });
    }
    if !g.json {
        println!("no errors found");
    }
    Ok(0)
}
