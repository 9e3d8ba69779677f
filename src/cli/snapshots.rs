//! `repo snapshots`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json, table};
use repo::ops::snapshots::{self, SnapshotsRequest};
use repo::selection::{group, SnapshotFilter};
use repo::snapshot::Snapshot;
use repo::timespec::parse_time;

/// Snapshot filter flags shared by the history commands (`snapshots`, `find`, `forget`,
/// `mount`): [`SelectArgs`] plus the source kind and a time window.
#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only snapshots of this source kind
    #[arg(long, value_parser = ["files", "mongodb"])]
    source: Option<String>,
    /// Only snapshots taken at or after this time ("7d" = the last seven days)
    #[arg(long)]
    since: Option<String>,
    /// Only snapshots taken at or before this time
    #[arg(long)]
    until: Option<String>,
}

impl FilterArgs {
    /// The filter these flags (and `-P PLAN`) describe; paths are made absolute, times
    /// parsed.
    pub fn filter(self, g: &GlobalOpts) -> Result<SnapshotFilter> {
        let now = chrono::Utc::now();
        let time = |t: Option<String>| t.map(|s| parse_time(&s, now)).transpose();
        Ok(SnapshotFilter {
            source: self.source,
            since: time(self.since)?,
            until: time(self.until)?,
            ..self.select.filter(g)?
        })
    }
}

/// How commands that take a SNAPSHOT narrow `latest` (and `--at`): the newest snapshot
/// of these hosts, holding these paths, with these tags — and of the `-P` plan.
#[derive(clap::Args, Debug, Default)]
pub struct SelectArgs {
    /// Only snapshots of this host (repeatable); `latest` is the newest of them
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Only snapshots that contain this path (repeatable)
    #[arg(long = "path")]
    pub paths: Vec<std::ffi::OsString>,
    /// Only snapshots with this tag (repeatable: all must match)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

impl SelectArgs {
    /// The filter these flags describe (paths made absolute); with `-P PLAN`, only that
    /// plan's snapshots (tag `plan:PLAN`).
    pub fn filter(self, g: &GlobalOpts) -> Result<SnapshotFilter> {
        let mut paths = Vec::new();
        for p in &self.paths {
            let abs = repo::source::fs::absolute(std::path::Path::new(p))?;
            paths.push(repo::tree::path::text(&abs));
        }
        let mut tags = self.tags;
        if let Some(plan) = &g.plan {
            tags.push(format!("plan:{plan}"));
        }
        Ok(SnapshotFilter {
            hosts: self.hosts,
            paths,
            tags,
            ..SnapshotFilter::default()
        })
    }
}

/// Arguments of `repo snapshots`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    filter: FilterArgs,
    /// Only the newest N snapshots of each source
    #[arg(long, value_name = "N")]
    latest: Option<usize>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let req = SnapshotsRequest {
        filter: a.filter.filter(g)?,
        latest: a.latest,
    };
    let repo = g.open(false)?;
    let snaps = snapshots::run(&repo, &req, &g.ctx())?;
    if g.json {
        print_json(&snaps)?;
        return Ok(0);
    }
    let groups = group(snaps);
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

/// A snapshot id (or "latest") given where paths, which may be any bytes, are allowed:
/// it must be text.
pub fn snapshot_arg(s: std::ffi::OsString) -> anyhow::Result<String> {
    s.into_string()
        .map_err(|s| anyhow::anyhow!("{s:?} is not a snapshot id or \"latest\""))
}
