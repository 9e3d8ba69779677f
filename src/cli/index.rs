//! `repo index`.

use anyhow::Result;
use clap::Subcommand;

use super::context::GlobalOpts;
use super::fmt::print_json;
use repo::ops::index::{self, IndexRebuildRequest};

/// Arguments of `repo index`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: IndexCommand,
}

impl Args {
    /// Whether it writes to the repository (`rebuild --from-packs` adds a segment).
    pub fn changes(&self) -> bool {
        matches!(self.command, IndexCommand::Rebuild { from_packs: true })
    }
}

#[derive(Subcommand, Debug)]
enum IndexCommand {
    /// Recreate the local index from the repository's index segments (nothing is written
    /// to the repository)
    Rebuild {
        /// Also read the trailers of packs no segment lists and list them in a new segment
        /// (writes to the repository; takes the exclusive lock)
        #[arg(long)]
        from_packs: bool,
    },
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    match a.command {
        IndexCommand::Rebuild { from_packs } => {
            let mut repo = g.open(false)?;
            let report = index::rebuild(&mut repo, &IndexRebuildRequest { from_packs }, &g.ctx())?;
            if g.json {
                print_json(&report)?;
            } else {
                println!(
                    "index rebuilt: {} segment(s) merged, {} pack(s) read from trailers",
                    report.segments_merged, report.packs_from_trailers
                );
                for d in &report.damaged_segments {
                    println!("warning: skipped {d}");
                }
            }
        }
    }
    Ok(0)
}
