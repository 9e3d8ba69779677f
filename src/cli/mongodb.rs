//! `repo mongodb follow|coverage`: continuous oplog capture and what it makes restorable.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};

use repo::lock::LockKind;
use repo::oplog::coverage::{self, Coverage};
use repo::oplog::follow::{self, Event, FollowOptions};
use repo::snapshot::ClusterTime;

use super::context::GlobalOpts;
use super::fmt::print_json;

/// Arguments of `repo mongodb`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
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

/// Formats a cluster time as UTC seconds plus its ordinal ("2026-11-28T10:16:59Z #3").
pub fn show(t: ClusterTime) -> String {
    let when: DateTime<Utc> = Utc
        .timestamp_opt(i64::from(t.t), 0)
        .single()
        .unwrap_or_default();
    format!("{} #{}", when.format("%Y-%m-%dT%H:%M:%SZ"), t.i)
}

/// Runs `repo mongodb …`.
pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    match a.cmd {
        Cmd::Follow(f) => run_follow(g, f),
        Cmd::Coverage(c) => run_coverage(g, c),
    }
}

/// "500ms" or anything `parse_duration` reads ("2s", "5m").
fn duration(text: &str, flag: &str) -> Result<std::time::Duration> {
    if let Some(ms) = text.trim().strip_suffix("ms") {
        let ms: u64 = ms
            .trim()
            .parse()
            .with_context(|| format!("{flag} {text:?}"))?;
        anyhow::ensure!(ms > 0, "{flag} {text:?}: must be above zero");
        return Ok(std::time::Duration::from_millis(ms));
    }
    let d = repo::timespec::parse_duration(text).with_context(|| format!("{flag} {text:?}"))?;
    d.to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} {text:?}: must be above zero"))
}

fn run_follow(g: &GlobalOpts, a: FollowArgs) -> Result<i32> {
    // One capture set, however the databases were listed: resuming matches on it.
    let mut dbs = a.dbs;
    dbs.sort();
    dbs.dedup();
    let opts = FollowOptions {
        uri: a.mongodb_uri,
        dbs,
        seal_interval: duration(&a.seal_interval, "--seal-interval")?,
        seal_bytes: super::stats::parse_size(&a.seal_size).context("--seal-size")? as usize,
        poll: duration(&a.poll, "--poll")?,
        once: a.once,
    };
    let repo = g.open(false)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let json = g.json;
    let quiet = g.quiet;
    follow::run(&repo, &opts, stop, |e| match e {
        Event::Resumed(at) if !quiet && !json => match at {
            Some(t) => eprintln!("following the oplog after {}", show(t)),
            None => eprintln!(
                "following the oplog from now (no snapshot or slice of this source yet: take a \
                 snapshot to have a base to restore from)"
            ),
        },
        Event::Sealed(s) => {
            if json {
                if let Ok(v) = serde_json::to_string(&s) {
                    println!("{v}");
                }
            } else if !quiet {
                println!(
                    "sealed slice {}: {} entries, {} bytes, covers up to {}",
                    s.id.short(),
                    s.entries,
                    s.bytes,
                    show(s.until)
                );
            }
        }
        Event::Gap(gap) => eprintln!(
            "WARNING: oplog entries between {} and {} were lost (the oplog rolled over before \
             they were read); moments in that range cannot be restored — raise the oplog size \
             or keep `follow` running",
            show(gap.from),
            show(gap.to)
        ),
        Event::Retrying { error, in_secs } => {
            eprintln!("WARNING: {error}; retrying in {in_secs} s (what was read is kept)")
        }
        _ => {}
    })?;
    Ok(0)
}

fn run_coverage(g: &GlobalOpts, a: CoverageArgs) -> Result<i32> {
    let (repo, _lock) = g.open_locked(false, LockKind::Shared, "mongodb coverage")?;
    let slices = repo::oplog::load_slices(&repo)?;
    let snaps = repo.snapshots()?;
    let mut all: Vec<Coverage> = coverage::compute(&snaps, &slices);
    if let Some(src) = &a.mongodb_uri_source {
        let mut want = vec![src.clone(), repo::source::mongodb::redact(src)];
        if src.starts_with("mongodb") {
            if let Ok(client) = repo::source::mongodb::connect(src) {
                let hello = repo::source::mongodb::hello(&client)?;
                want.push(repo::source::mongodb::server_identity(
                    &client, &hello, src,
                )?);
            }
        }
        all.retain(|c| {
            want.contains(&c.source) || c.uri.as_ref().is_some_and(|u| want.contains(u))
        });
        if all.is_empty() {
            anyhow::bail!(
                "no snapshot or oplog slice of {} in this repository",
                repo::source::mongodb::redact(src)
            );
        }
    }
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
                        show(r.to)
                    )
                }
                _ => show(r.to),
            };
            if r.from == r.to && r.to_wall.is_none() {
                println!("  restorable at    {} (snapshot only)", show(r.from));
            } else {
                println!("  restorable from  {}  to  {to}", show(r.from));
            }
        }
        for w in c.spans.windows(2) {
            println!(
                "  GAP: no oplog from {} to {}",
                show(w[0].until),
                show(w[1].after)
            );
        }
        for gap in &c.gaps {
            println!(
                "  GAP: oplog rolled over, lost {} .. {}",
                show(gap.from),
                show(gap.to)
            );
        }
    }
    Ok(0)
}
