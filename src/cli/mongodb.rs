//! `repo mongodb follow|coverage`: continuous oplog capture and what it makes restorable.

use anyhow::{Context, Result};

use repo::mongo::uri::ConnectionString;
use repo::ops::mongodb::{self, CoverageRequest, FollowRequest};

use super::context::GlobalOpts;
use super::fmt::print_json;

/// Arguments of `repo mongodb`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

impl Args {
    /// Whether this is `follow` (which goes in the operation log).
    pub fn is_follow(&self) -> bool {
        matches!(self.cmd, Cmd::Follow(_))
    }
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Capture the oplog continuously (runs until stopped; SIGINT/SIGTERM seal what was
    /// read and exit), so collections restore to any second with `restore --at`
    Follow(FollowArgs),
    /// Show the time ranges each MongoDB source can be restored to, to the second
    Coverage(CoverageArgs),
}

#[derive(clap::Args, Debug)]
struct FollowArgs {
    /// The server (a replica set member: only those keep an oplog)
    #[arg(
        long,
        value_name = "URI",
        env = "REPO_MONGODB_URI",
        hide_env_values = true
    )]
    mongodb_uri: String,
    /// Only this database (repeatable; default: all but admin, local and config)
    #[arg(long = "db", value_name = "NAME")]
    dbs: Vec<String>,
    /// Seal a slice at least this often ("60s", "5m")
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    seal_interval: String,
    /// Seal a slice once this much oplog is buffered ("16M")
    #[arg(long, default_value = "16M", value_name = "SIZE")]
    seal_size: String,
    /// Pause between reads of an idle oplog ("500ms", "2s")
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    poll: String,
    /// Capture what the oplog holds now, seal it and exit (for cron-style use)
    #[arg(long)]
    once: bool,
}

#[derive(clap::Args, Debug)]
struct CoverageArgs {
    /// Only this source: a connection string (the server is asked what it is; a
    /// connection string of data recorded before identities, matched as written), or an
    /// identity as coverage prints it (`replset:…`)
    #[arg(long, value_name = "URI")]
    mongodb_uri_source: Option<String>,
}

/// Runs `repo mongodb …`.
pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    match a.cmd {
        Cmd::Follow(f) => run_follow(g, f),
        Cmd::Coverage(c) => run_coverage(g, c),
    }
}

/// A positive duration in the one syntax every flag takes ("500ms", "2s", "5m").
fn duration(text: &str, flag: &str) -> Result<std::time::Duration> {
    let d = repo::timespec::parse_duration(text).with_context(|| format!("{flag} {text:?}"))?;
    d.to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} {text:?}: must be above zero"))
}

fn run_follow(g: &GlobalOpts, a: FollowArgs) -> Result<i32> {
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let req = FollowRequest {
        uri: ConnectionString::new(a.mongodb_uri),
        dbs: a.dbs,
        seal_interval_ms: millis(duration(&a.seal_interval, "--seal-interval")?),
        seal_bytes: super::fmt::parse_size(&a.seal_size).context("--seal-size")?,
        poll_ms: millis(duration(&a.poll, "--poll")?),
        once: a.once,
    };
    let repo = g.open(false)?;
    // SIGINT/SIGTERM cancel the context: what was read is sealed, then it returns.
    // With --json each sealed slice is printed as one JSON line as it happens (the
    // terminal observer), so a supervisor can follow along.
    mongodb::follow(&repo, &req, &g.ctx())?;
    Ok(0)
}

fn run_coverage(g: &GlobalOpts, a: CoverageArgs) -> Result<i32> {
    let repo = g.open(false)?;
    let req = CoverageRequest {
        source: a.mongodb_uri_source,
    };
    let all = mongodb::coverage(&repo, &req, &g.ctx())?.sources;
    if g.json {
        print_json(&all)?;
        return Ok(0);
    }
    if all.is_empty() {
        println!("no MongoDB snapshots with a cluster time and no oplog slices");
        return Ok(0);
    }
    for c in &all {
        let dbs = if c.dbs.is_empty() {
            "all databases".to_string()
        } else {
            c.dbs.join(", ")
        };
        let via = c
            .uri
            .as_ref()
            .map(|u| format!(" via {u}"))
            .unwrap_or_default();
        println!(
            "{}{via} ({dbs}): {} snapshot(s), {} slice(s)",
            c.source, c.snapshots, c.slices
        );
        if c.ranges.is_empty() {
            println!("  nothing restorable yet (no snapshot with a cluster time)");
        }
        for r in &c.ranges {
            // An idle server vouches for the time after its last write up to its clock.
            let to = match r.to_wall {
                Some(w) if w.timestamp() > i64::from(r.to.t) => {
                    format!(
                        "{} (idle after {})",
                        w.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                        r.to
                    )
                }
                _ => r.to.to_string(),
            };
            if r.from == r.to && r.to_wall.is_none() {
                println!("  restorable at    {} (snapshot only)", r.from);
            } else {
                println!("  restorable from  {}  to  {to}", r.from);
            }
        }
        for w in c.spans.windows(2) {
            println!("  GAP: no oplog from {} to {}", w[0].until, w[1].after);
        }
        for gap in &c.gaps {
            println!("  GAP: oplog rolled over, lost {} .. {}", gap.from, gap.to);
        }
    }
    Ok(0)
}
