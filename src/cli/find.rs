//! `repo find`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, print_json, table};
use super::snapshots::FilterArgs;
use repo::ops::find::{self, FindRequest};

/// Arguments of `repo find`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Glob: without "/" it matches names (`*.pdf`), with "/" whole snapshot paths
    /// (`/home/*/docs/**`)
    pattern: String,
    #[command(flatten)]
    filter: FilterArgs,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let req = FindRequest {
        pattern: a.pattern,
        filter: a.filter.filter(g)?,
    };
    let repo = g.open(false)?;
    let found = find::run(&repo, &req, &g.ctx())?;
    if g.json {
        print_json(&found)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = found
        .matches
        .iter()
        .map(|m| {
            vec![
                m.snapshot.clone(),
                m.time.get(..19).unwrap_or(&m.time).replace('T', " "),
                m.path.display().into_owned(),
                bytes(m.size),
                m.mtime.get(..19).unwrap_or(&m.mtime).replace('T', " "),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["snapshot", "time (UTC)", "path", "size", "mtime"], &rows)
    );
    println!(
        "{} match(es) in {} snapshot(s) searched",
        found.matches.len(),
        found.snapshots_searched
    );
    Ok(0)
}
