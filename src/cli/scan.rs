//! `repo scan`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::print_json;
use repo::ops::scan::{self, ScanOf, ScanOutcome, ScanReport, ScanRequest};
use repo::ops::select::SnapshotRef;
use repo::tree::path::SnapPath;

/// Arguments of `repo scan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Live path to check (with --mongodb-uri: the snapshot to compare with; with -P PLAN
    /// and no path: every source of the plan against its latest snapshot)
    path: Option<std::ffi::OsString>,
    /// Snapshot to compare with [default: the latest one containing PATH]
    snapshot: Option<String>,
    /// Compare a live MongoDB server with a snapshot's collections instead of files
    #[arg(long, value_name = "URI")]
    mongodb_uri: Option<String>,
    /// With --mongodb-uri: only namespaces matching this glob (repeatable)
    #[arg(long = "ns", value_name = "GLOB")]
    namespaces: Vec<String>,
    /// Hash the content of files whose size and mtime are unchanged, to find corruption
    #[arg(long)]
    read: bool,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    if a.path.is_none() && a.mongodb_uri.is_none() && g.plan.is_some() {
        return run_plan(g, a);
    }
    let read = a.read;
    let req = request(a)?;
    let repo = g.open(false)?;
    let outcome = scan::run(&repo, &req, &g.ctx())?;
    let code = if outcome.lost() {
        super::exit::LOST
    } else {
        super::exit::OK
    };
    if g.json {
        print_json(&outcome)?;
        return Ok(code);
    }
    match &outcome {
        ScanOutcome::Files(r) => print_files(r, read),
        #[cfg(feature = "mongo")]
        ScanOutcome::Mongodb(r) => print_mongo(r),
    }
    Ok(code)
}

/// `scan -P PLAN`: each of the plan's sources against the plan's latest snapshot that
/// holds it (the seed's `recover scan`).
fn run_plan(g: &GlobalOpts, a: Args) -> Result<i32> {
    let cfg = super::plans::load(g)?;
    let plan = cfg.plan(g.plan.as_deref().unwrap_or_default())?;
    let snapshot = |s: &Option<String>| {
        let filter = repo::selection::SnapshotFilter {
            tags: vec![plan.tag()],
            ..Default::default()
        };
        Some(SnapshotRef::id(s.clone().unwrap_or_else(|| "latest".into())).with_filter(filter))
    };
    let mut reqs: Vec<ScanRequest> = plan
        .paths
        .iter()
        .map(|p| ScanRequest {
            snapshot: snapshot(&a.snapshot),
            of: ScanOf::Files {
                path: p.clone(),
                read: a.read,
            },
        })
        .collect();
    #[cfg(feature = "mongo")]
    if let Some(m) = &plan.mongodb {
        let mut namespaces: Vec<String> = m.databases.iter().map(|d| format!("{d}.*")).collect();
        namespaces.extend(m.collections.iter().cloned());
        reqs.push(ScanRequest {
            snapshot: snapshot(&a.snapshot),
            of: ScanOf::Mongodb {
                uri: m.uri.read()?,
                namespaces,
            },
        });
    }
    let repo = g.open(false)?;
    let mut outcomes = Vec::new();
    for req in &reqs {
        outcomes.push(scan::run(&repo, req, &g.ctx())?);
    }
    let lost = outcomes.iter().any(|o| o.lost());
    if g.json {
        print_json(&outcomes)?;
    } else {
        for o in &outcomes {
            match o {
                ScanOutcome::Files(r) => print_files(r, a.read),
                #[cfg(feature = "mongo")]
                ScanOutcome::Mongodb(r) => print_mongo(r),
            }
        }
    }
    Ok(if lost {
        super::exit::LOST
    } else {
        super::exit::OK
    })
}

/// The arguments as a request: a live path (and maybe a snapshot), or a server.
fn request(a: Args) -> Result<ScanRequest> {
    if let Some(uri) = a.mongodb_uri {
        #[cfg(not(feature = "mongo"))]
        anyhow::bail!("this build has no MongoDB support (feature mongo); cannot scan {uri}");
        #[cfg(feature = "mongo")]
        {
            if a.snapshot.is_some() {
                anyhow::bail!("with --mongodb-uri give at most one argument: the snapshot");
            }
            return Ok(ScanRequest {
                snapshot: a
                    .path
                    .map(super::snapshots::snapshot_arg)
                    .transpose()?
                    .map(SnapshotRef::id),
                of: ScanOf::Mongodb {
                    uri: repo::mongo::uri::ConnectionString::new(uri),
                    namespaces: a.namespaces,
                },
            });
        }
    }
    let Some(path) = a.path else {
        anyhow::bail!("give a PATH to scan (or --mongodb-uri URI)");
    };
    Ok(ScanRequest {
        snapshot: a.snapshot.map(SnapshotRef::id),
        of: ScanOf::Files {
            path: std::path::PathBuf::from(path),
            read: a.read,
        },
    })
}

fn print_files(r: &ScanReport, read: bool) {
    let path = r.path.display();
    let id = &r.snapshot;
    let section = |title: &str, items: &[SnapPath], advice: String| {
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
    section(
        "unreadable (not compared)",
        &r.unreadable,
        "check permissions (scan as the user the backups run as) and the disk".into(),
    );
    if !r.duplicates.is_empty() {
        println!("duplicate contents ({} groups):", r.duplicates.len());
        for g in r.duplicates.iter().take(20) {
            let shown: Vec<_> = g.iter().map(|p| p.display()).collect();
            println!("  {}", shown.join("  =  "));
        }
        println!(
            "  -> stored once in the repository; remove live copies only if they are not needed"
        );
    }
    if !read {
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
}

#[cfg(feature = "mongo")]
fn print_mongo(r: &repo::mongo::scan::MongoScan) {
    println!(
        "compared with snapshot {} ({})",
        r.snapshot,
        r.snapshot_time.format("%Y-%m-%d %H:%M:%S UTC")
    );
    for c in &r.collections {
        if c.missing {
            println!(
                "{}: MISSING (the collection is gone; {} documents in the snapshot)",
                c.ns, c.snapshot_documents
            );
            continue;
        }
        let state = if c.lost() {
            "DIFFERS"
        } else if c.extra_documents > 0 || !c.indexes_extra.is_empty() {
            "has additions"
        } else {
            "ok"
        };
        println!(
            "{}: {state}: {} live / {} in snapshot; {} missing, {} changed, {} extra",
            c.ns,
            c.live_documents,
            c.snapshot_documents,
            c.missing_documents,
            c.changed_documents,
            c.extra_documents
        );
        for (class, ids) in &c.examples {
            println!("  {class} _id: {}", ids.join(", "));
        }
        for (what, names) in [
            ("missing", &c.indexes_missing),
            ("changed", &c.indexes_changed),
            ("extra", &c.indexes_extra),
        ] {
            if !names.is_empty() {
                println!("  indexes {what}: {}", names.join(", "));
            }
        }
    }
    for n in &r.new_collections {
        println!("{n}: new (not in the snapshot)");
    }
    if r.lost() {
        println!(
            "-> bring lost data back with: repo restore {} --mongodb-uri URI --ns DB.COLL --conflict skip",
            r.snapshot
        );
    }
}
