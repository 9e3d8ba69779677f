//! `repo snapshots`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json, table};
use repo::selection::{group, SnapshotFilter};
use repo::snapshot::Snapshot;
use repo::timespec::parse_time;

/// Arguments of `repo snapshots`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only snapshots of this host (repeatable)
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Only snapshots that contain this path (repeatable)
    #[arg(long = "path")]
    paths: Vec<String>,
    /// Only snapshots with this tag (repeatable: all must match)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only snapshots of this source kind
    #[arg(long, value_parser = ["files", "mongodb"])]
    source: Option<String>,
    /// Only snapshots taken at or after this time ("7d" = the last seven days)
    #[arg(long)]
    since: Option<String>,
    /// Only snapshots taken at or before this time
    #[arg(long)]
    until: Option<String>,
    /// Only the newest N snapshots of each source
    #[arg(long, value_name = "N")]
    latest: Option<usize>,
}

/// Builds the filter shared by history commands from their flags.
pub fn filter(
    hosts: Vec<String>,
    paths: &[String],
    tags: Vec<String>,
    source: Option<String>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<SnapshotFilter> {
    let now = chrono::Utc::now();
    let mut abs = Vec::new();
    for p in paths {
        abs.push(
            repo::source::fs::absolute(std::path::Path::new(p))?
                .display()
                .to_string(),
        );
    }
    Ok(SnapshotFilter {
        hosts,
        paths: abs,
        tags,
        source,
        since: since.map(|s| parse_time(s, now)).transpose()?,
        until: until.map(|s| parse_time(s, now)).transpose()?,
    })
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let f = filter(
        a.hosts,
        &a.paths,
        a.tags,
        a.source,
        a.since.as_deref(),
        a.until.as_deref(),
    )?;
    let repo = g.open(false)?;
    let mut groups = group(f.apply(repo.snapshots()?));
    if let Some(n) = a.latest {
        for series in groups.values_mut() {
            let drop = series.len().saturating_sub(n);
            series.drain(..drop);
        }
    }
    if g.json {
        let mut all: Vec<Snapshot> = groups.into_values().flatten().collect();
        all.sort_by_key(|s| s.time);
        print_json(&all)?;
        return Ok(0);
    }
    let mut total = 0;
    for (key, series) in &groups {
        total += series.len();
        println!("{key}");
        println!(
            "{}\n",
            table(&HEADERS, &series.iter().map(row).collect::<Vec<_>>())
        );
    }
    println!("{total} snapshot(s)");
    Ok(0)
}

const HEADERS: [&str; 8] = [
    "id",
    "time (UTC)",
    "host",
    "source",
    "tags",
    "files",
    "size",
    "added",
];

fn row(s: &Snapshot) -> Vec<String> {
    let m = &s.summary;
    vec![
        s.id.short(),
        s.time.format("%Y-%m-%d %H:%M:%S").to_string(),
        s.host.clone(),
        format!("{}:{}", s.source.kind, s.source.description),
        s.tags.join(","),
        (m.files_new + m.files_changed + m.files_unchanged).to_string(),
        bytes(m.total_bytes),
        bytes(m.bytes_added),
    ]
}
