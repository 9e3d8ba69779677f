//! `repo scan`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::print_json;
use repo::ops::scan;
use repo::selection::SnapshotFilter;

/// Exit code when files were found missing or corrupted.
pub const EXIT_LOST: i32 = 4;

/// Arguments of `repo scan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Live path to check
    path: String,
    /// Snapshot to compare with [default: the latest one containing PATH]
    snapshot: Option<String>,
    /// Hash the content of files whose size and mtime are unchanged, to find corruption
    #[arg(long)]
    read: bool,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let path = repo::source::fs::absolute(std::path::Path::new(&a.path))?
        .display()
        .to_string();
    let repo = g.open(false)?;
    let snap = match &a.snapshot {
        Some(s) => repo.find_snapshot(s)?,
        None => {
            let f = SnapshotFilter {
                paths: vec![path.clone()],
                ..Default::default()
            };
            f.apply(repo.snapshots()?)
                .pop()
                .ok_or_else(|| anyhow::anyhow!("no snapshot contains {path}"))?
        }
    };
    let r = scan::scan(&repo, &snap, &path, a.read)?;
    let code = if r.lost() { EXIT_LOST } else { 0 };
    if g.json {
        print_json(&r)?;
        return Ok(code);
    }
    let id = &r.snapshot;
    let section = |title: &str, items: &[String], advice: String| {
        if items.is_empty() {
            return;
        }
        println!("{title} ({}):", items.len());
        for i in items.iter().take(50) {
            println!("  {i}");
        }
        if items.len() > 50 {
            println!("  ... and {} more (use --json for all)", items.len() - 50);
        }
        println!("  -> {advice}");
    };
    println!("compared {path} with snapshot {id}");
    section(
        "missing",
        &r.missing,
        format!("bring them back: repo restore {id} --target / --conflict skip {path}"),
    );
    section(
        "corrupted (content changed, size and mtime did not)",
        &r.corrupted,
        format!("repair from the snapshot: repo restore {id} --target / --conflict overwrite --verify-existing {path}"),
    );
    section(
        "modified",
        &r.modified,
        "expected edits are backed up by the next `repo snapshot`; compare first with `repo restore --dry-run`".into(),
    );
    section(
        "new",
        &r.new,
        "not backed up yet: run `repo snapshot`".into(),
    );
    if !r.duplicates.is_empty() {
        println!("duplicate contents ({} groups):", r.duplicates.len());
        for g in r.duplicates.iter().take(20) {
            println!("  {}", g.join("  =  "));
        }
        println!(
            "  -> stored once in the repository; remove live copies only if they are not needed"
        );
    }
    if !a.read {
        println!("(contents not read: add --read to detect corruption)");
    }
    if r.lost() {
        println!(
            "LOST: {} missing, {} corrupted",
            r.missing.len(),
            r.corrupted.len()
        );
    } else {
        println!("nothing lost");
    }
    Ok(code)
}
