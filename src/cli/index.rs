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
    /// Recreate the local index from the repository's index segments (and pack trailers
    /// for packs no segment lists)
    Rebuild {
        /// Ignore index segments and read every pack trailer
        #[arg(long)]
        from_packs: bool,
    },
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let (mut repo, _lock) = g.open_locked(false, LockKind::Shared, "index rebuild")?;
    match a.command {
        IndexCommand::Rebuild { from_packs } => {
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
