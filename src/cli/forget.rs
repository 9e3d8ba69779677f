//! `repo forget`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{print_json, table};
use super::prune::{print_report, PruneArgs};
use super::snapshots::FilterArgs;
use repo::ops::forget::{self, ForgetReport, ForgetRequest};
use repo::retention::{GroupBy, RetentionPolicy};

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
    /// Remove operation-log records older than DURATION ("400d"); alone, only the log
    /// is trimmed
    #[arg(long, value_name = "DURATION")]
    keep_log: Option<String>,
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
    let req = ForgetRequest {
        policy: a.policy(),
        prune: a
            .prune
            .then(|| a.prune_args.request(a.dry_run))
            .transpose()?,
        ids: a.ids,
        save_policy: a.save_policy,
        group_by: by,
        filter: a.filter.filter(g)?,
        dry_run: a.dry_run,
        keep_log: a.keep_log,
    };
    let repo = g.open(false)?;
    let report = forget::run(&repo, &req, &g.ctx())?;
    g.journal.report(&report, req.dry_run);
    if g.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(0)
}

fn print_text(r: &ForgetReport) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    if let Some(n) = r.log_records_removed {
        println!("{verb} {n} operation-log record(s)");
    }
    if let Some(policy) = &r.policy {
        if r.policy_saved {
            println!(
                "saved as the repository's retention policy: {}",
                policy.describe()
            );
        }
        println!("policy: {}", policy.describe());
    }
    for o in &r.groups {
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
                    } else if r.dry_run {
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
    if r.policy.is_none() {
        for id in &r.removed {
            println!(
                "{} {}",
                if r.dry_run { "would remove" } else { "remove" },
                id.short()
            );
        }
    }
    let kept = r.kept.map(|k| format!(", kept {k}")).unwrap_or_default();
    println!("{verb} {} snapshot(s){kept}", r.removed.len());
    if r.oplog_slices_removed > 0 {
        println!(
            "{verb} {} oplog slice(s) that only those snapshots could use",
            r.oplog_slices_removed
        );
    }
    if let Some(p) = &r.prune {
        print_report(p, r.dry_run);
    }
}
