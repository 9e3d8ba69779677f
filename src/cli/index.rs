//! `repo index`.

use anyhow::Result;
use clap::Subcommand;

use super::context::GlobalOpts;
use super::fmt::print_json;
use repo::lock::LockKind;

/// Arguments of `repo index`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: IndexCommand,
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
            // Only adopting packs writes; a plain rebuild is a reader and takes no lock.
            let (mut repo, _lock) = if from_packs {
                let (r, l) = g.open_locked(false, LockKind::Exclusive, "index rebuild")?;
                (r, Some(l))
            } else {
                (g.open(false)?, None)
            };
            let report = repo.rebuild_index(from_packs)?;
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
