//! `repo stats` and `repo settings`.

use anyhow::{bail, Result};

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json, table};
use repo::settings::Settings;

/// Arguments of `repo stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only list this snapshot in the per-snapshot table
    snapshot: Option<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let repo = g.open(false)?;
    let only = a.snapshot.map(|s| repo.find_snapshot(&s)).transpose()?;
    let st = repo::ops::stats::run(&repo, only.as_ref())?;
    if g.json {
        print_json(&st)?;
        return Ok(0);
    }
    println!("snapshots:          {}", st.snapshots);
    println!("size on disk:       {}", bytes(st.size_on_disk));
    if let Some(q) = st.quota_bytes {
        println!(
            "quota:              {} ({:.0}% used)",
            bytes(q),
            100.0 * st.size_on_disk as f64 / q as f64
        );
    }
    println!("packs:              {}", st.packs);
    println!(
        "blobs:              {} data, {} tree",
        st.data_blobs, st.tree_blobs
    );
    println!(
        "all snapshots:      {} of files",
        bytes(st.snapshots_raw_bytes)
    );
    println!(
        "unique data:        {} ({} stored)",
        bytes(st.data_raw_bytes),
        bytes(st.data_stored_bytes)
    );
    println!("dedup ratio:        {:.2}x", st.dedup_ratio);
    println!("compression ratio:  {:.2}x", st.compression_ratio);
    println!(
        "reclaimable:        {} (repo prune --max-unused 0%)",
        bytes(st.reclaimable_bytes)
    );
    let rows: Vec<Vec<String>> = st
        .per_snapshot
        .iter()
        .map(|s| {
            vec![
                s.id[..8].to_string(),
                s.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                s.files.to_string(),
                bytes(s.raw_bytes),
                bytes(s.unique_raw_bytes),
                bytes(s.unique_stored_bytes),
            ]
        })
        .collect();
    println!();
    println!(
        "{}",
        table(
            &[
                "id",
                "time (UTC)",
                "files",
                "size",
                "unique",
                "unique stored"
            ],
            &rows
        )
        .trim_end()
    );
    Ok(0)
}

/// Arguments of `repo settings`.
#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    /// Set the size quota ("500GiB", "2TB", "1000000") or remove it ("none")
    #[arg(long, value_name = "SIZE|none")]
    quota: Option<String>,
    /// Remove the stored retention policy
    #[arg(long)]
    clear_policy: bool,
}

/// Parses "500GiB", "2 TB", "10m", "4096".
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("cannot read {s:?} as a size; use e.g. 500GiB or 2TB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024f64.powi(2),
        "mb" => 1e6,
        "g" | "gib" => 1024f64.powi(3),
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        _ => bail!("cannot read {s:?} as a size; use e.g. 500GiB or 2TB"),
    };
    Ok((n * mult) as u64)
}

pub fn run_settings(g: &GlobalOpts, a: SettingsArgs) -> Result<i32> {
    let repo = g.open(false)?;
    let mut s = Settings::load(repo.backend(), repo.key())?;
    let mut changed = false;
    if let Some(q) = &a.quota {
        s.quota_bytes = if q == "none" {
            None
        } else {
            Some(parse_size(q)?)
        };
        changed = true;
    }
    if a.clear_policy {
        s.retention = None;
        changed = true;
    }
    if changed {
        s.save(repo.backend(), repo.key())?;
    }
    if g.json {
        print_json(&s)?;
        return Ok(0);
    }
    match &s.retention {
        Some(p) => println!("retention policy: {}", p.describe()),
        None => println!(
            "retention policy: none (save one with `repo forget --keep-... --save-policy`)"
        ),
    }
    match s.quota_bytes {
        Some(q) => println!("quota: {} ({} used)", bytes(q), bytes(repo.total_size()?)),
        None => println!("quota: none"),
    }
    Ok(0)
}
