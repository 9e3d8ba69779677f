//! `repo forget`.

use anyhow::{bail, Result};

use super::context::GlobalOpts;
use super::fmt::{print_json, table};
use super::prune::{print_report, PruneArgs};
use super::snapshots::FilterArgs;
use repo::lock::LockKind;
use repo::ops::forget;
use repo::retention::{GroupBy, RetentionPolicy};
use repo::settings::Settings;

/// Arguments of `repo forget`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Snapshots to remove (ids or unique prefixes); without, the retention policy decides
    #[arg(value_name = "SNAPSHOT")]
    ids: Vec<String>,
    /// Keep the newest N snapshots
    #[arg(long, value_name = "N")]
    keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N")]
    keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N")]
    keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N weeks that have one
    #[arg(long, value_name = "N")]
    keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N")]
    keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N")]
    keep_yearly: Option<u32>,
    /// Keep every snapshot taken within DURATION of the group's newest ("30d", "2w")
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<String>,
    /// Keep every snapshot with this tag (repeatable)
    #[arg(long = "keep-tag", value_name = "TAG")]
    keep_tags: Vec<String>,
    /// Apply the policy per group of snapshots with the same host,paths,source (any
    /// comma-separated subset; "" for one group)
    #[arg(long, default_value = "host,paths,source")]
    group_by: String,
    /// Store these --keep-* options as the repository's default policy
    #[arg(long)]
    save_policy: bool,
    #[command(flatten)]
    filter: FilterArgs,
    /// Only show what would be removed
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Prune afterwards (reclaim the space of what was removed)
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    prune_args: PruneArgs,
}

impl Args {
    fn policy(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self.keep_within.clone(),
            keep_tags: self.keep_tags.clone(),
        }
    }
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let by: GroupBy = a.group_by.parse()?;
    let given = a.policy();
    let prune_opts = a
        .prune
        .then(|| a.prune_args.options(a.dry_run))
        .transpose()?;
    let filter = a.filter.filter()?;
    let (repo, lock) = g.open_locked_maintenance(LockKind::Shared, "forget")?;
    let mut settings = Settings::load(repo.backend(), repo.key())?;
    if a.save_policy {
        given.validate()?;
        settings.retention = Some(given.clone());
        settings.save(repo.backend(), repo.key())?;
        if !g.quiet {
            eprintln!(
                "saved as the repository's retention policy: {}",
                given.describe()
            );
        }
    }
    let snaps = filter.apply(repo.snapshots()?);
    // With --json, one object: the forget outcome (and the prune report under "prune").
    let mut json = serde_json::Value::Null;
    let (removed, kept, gone) = if !a.ids.is_empty() {
        if !given.is_empty() {
            bail!("give snapshot ids or --keep-* options, not both");
        }
        // By id, damaged snapshot objects included: forgetting is how they go away.
        let mut chosen = Vec::new();
        for sel in &a.ids {
            chosen.push(repo.resolve_snapshot_id(sel)?);
        }
        if !g.json {
            for id in &chosen {
                let when = match repo.load_snapshot(id) {
                    Ok(s) => s.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                    Err(_) => "(damaged)".into(),
                };
                println!(
                    "{} {} {when}",
                    if a.dry_run { "would remove" } else { "remove" },
                    id.short(),
                );
            }
        } else {
            let ids: Vec<String> = chosen.iter().map(|id| id.to_hex()).collect();
            json = serde_json::json!({ "removed": ids, "dry_run": a.dry_run });
        }
        if !a.dry_run {
            forget::remove_ids(&repo, &chosen)?;
        }
        (chosen.len(), None, chosen)
    } else {
        let policy = if given.is_empty() {
            match &settings.retention {
                Some(p) => p.clone(),
                None => bail!(
                    "no retention policy: give --keep-last/--keep-daily/... (add --save-policy to \
                     store them in the repository) or snapshot ids"
                ),
            }
        } else {
            given
        };
        let outcome = forget::plan(snaps, &policy, by)?;
        if g.json {
            json = serde_json::json!({
                "policy": policy,
                "dry_run": a.dry_run,
                "groups": outcome,
            });
        } else {
            println!("policy: {}", policy.describe());
            for o in &outcome {
                println!("\n{}:", o.group);
                let rows: Vec<Vec<String>> = o
                    .decisions
                    .iter()
                    .map(|d| {
                        vec![
                            d.snapshot.id.short(),
                            d.snapshot
                                .time
                                .with_timezone(&chrono::Local)
                                .format("%Y-%m-%d %H:%M:%S")
                                .to_string(),
                            if d.keep {
                                "keep".into()
                            } else if a.dry_run {
                                "would remove".into()
                            } else {
                                "remove".into()
                            },
                            d.reasons.join(", "),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["ID", "TIME", "ACTION", "KEPT BY"], &rows).trim_end()
                );
            }
        }
        let doomed: Vec<&repo::snapshot::Snapshot> = outcome
            .iter()
            .flat_map(|o| o.decisions.iter().filter(|d| !d.keep).map(|d| &d.snapshot))
            .collect();
        let kept: usize = outcome
            .iter()
            .map(|o| o.decisions.iter().filter(|d| d.keep).count())
            .sum();
        if !a.dry_run {
            forget::remove(&repo, &doomed)?;
        }
        let gone: Vec<_> = doomed.iter().map(|s| s.id).collect();
        (doomed.len(), Some(kept), gone)
    };
    // Oplog slices only the removed snapshots could use go with them.
    let slices = forget::unneeded_slices(&repo, &gone)?;
    if !a.dry_run {
        forget::remove_slices(&repo, &slices)?;
    }
    if let (false, Some(o)) = (slices.is_empty(), json.as_object_mut()) {
        o.insert(
            "oplog_slices_removed".into(),
            serde_json::json!(slices.len()),
        );
    }
    if !g.json {
        let kept = kept.map(|k| format!(", kept {k}")).unwrap_or_default();
        let verb = if a.dry_run { "would remove" } else { "removed" };
        println!("{verb} {removed} snapshot(s){kept}");
        if !slices.is_empty() {
            println!(
                "{verb} {} oplog slice(s) that only those snapshots could use",
                slices.len()
            );
        }
    }
    if let Some(opts) = prune_opts {
        // Prune needs the repository alone: trade the shared lock for an exclusive one.
        drop(lock);
        drop(repo);
        let (repo, _lock) = super::prune::lock_for_prune(g)?;
        let report = repo::ops::prune::run(&repo, &opts)?;
        if g.json {
            json["prune"] = serde_json::to_value(&report)?;
        } else {
            print_report(&report, &opts);
        }
    }
    if g.json {
        print_json(&json)?;
    }
    Ok(0)
}
