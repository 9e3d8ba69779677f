//! `config check`, `plans` and `run`: the config file's face.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::Utc;

use repo::ops::run::{self, Opener, RunEnv, RunReport, RunRequest, Status, Task};
use repo::plan::state::{self, PlanState};
use repo::plan::{Config, Plan, RepositoryConf};
use repo::repository::Repository;

use super::context::GlobalOpts;
use super::exit;
use super::fmt::print_json;

/// `config`.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    cmd: ConfigCmd,
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCmd {
    /// Check the config file: syntax, unknown keys, values, names; print the plans
    Check,
}

/// `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The plan to run
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    plan: Option<String>,
    /// Run every plan, one after the other
    #[arg(long)]
    all: bool,
    /// Open the repositories and read the sources' settings; change nothing, run no hook
    #[arg(long)]
    dry_run: bool,
    /// What to run: the backup (hooks, snapshot, copies, retention, check), or only the
    /// plan's check policy or a prune with its prune settings
    #[arg(long, value_name = "TASK", default_value = "backup", value_parser = parse_task)]
    task: Task,
}

fn parse_task(s: &str) -> std::result::Result<Task, String> {
    Task::parse(s).map_err(|e| e.to_string())
}

/// The config file, which must exist for these commands.
pub fn load(g: &GlobalOpts) -> Result<Config> {
    let path = g
        .config_path()
        .context("cannot find a config directory: set HOME or XDG_CONFIG_HOME, or pass --config")?;
    if !path.exists() {
        bail!(
            "no config file at {} (pass --config FILE or set REPO_CONFIG; README, \"Backup plans\")",
            path.display()
        );
    }
    Ok(Config::load(&path)?)
}

pub fn config(g: &GlobalOpts, a: ConfigArgs) -> Result<i32> {
    match a.cmd {
        ConfigCmd::Check => {
            let cfg = load(g)?;
            if g.json {
                print_json(&cfg)?;
                return Ok(exit::OK);
            }
            println!(
                "{}: OK ({} repositories, {} plans, {} notification targets)",
                cfg.path.display(),
                cfg.repositories.len(),
                cfg.plans.len(),
                cfg.notify.len()
            );
            for plan in cfg.plans.values() {
                print_plan(&cfg, plan, None);
            }
            Ok(exit::OK)
        }
    }
}

fn sources(plan: &Plan) -> String {
    let mut s: Vec<String> = plan.paths.iter().map(|p| p.display().to_string()).collect();
    if let Some(m) = &plan.mongodb {
        let from = match &m.uri {
            repo::plan::UriSource::Env(v) => format!("${v}"),
            repo::plan::UriSource::File(f) => f.display().to_string(),
        };
        let what = if m.databases.is_empty() && m.collections.is_empty() {
            "all databases".to_string()
        } else {
            [m.databases.clone(), m.collections.clone()]
                .concat()
                .join(", ")
        };
        s.push(format!("MongoDB {what} (URI from {from})"));
    }
    s.join(", ")
}

fn print_plan(cfg: &Config, plan: &Plan, st: Option<&PlanState>) {
    let location = cfg
        .repositories
        .get(&plan.repository)
        .map_or("?", |r| r.location.as_str());
    println!("\nplan {}", plan.name);
    println!("  repository  {} ({location})", plan.repository);
    println!("  sources     {}", sources(plan));
    if let Some(s) = &plan.schedule {
        println!("  schedule    {} (next: {})", s.as_str(), next(s));
    }
    if let Some(r) = &plan.retention {
        let prune = if r.prune { ", then prune" } else { "" };
        println!("  retention   {}{prune}", r.policy.describe());
    }
    if !plan.copy_to.is_empty() {
        println!("  copy to     {}", plan.copy_to.join(", "));
    }
    println!("  check       {}", describe_check(plan));
    if let Some(c) = &plan.scheduled_check {
        if let Some(s) = &c.schedule {
            println!(
                "  sched check {} (next: {}), {}",
                s.as_str(),
                next(s),
                c.describe_reads()
            );
        }
    }
    if let Some(p) = &plan.prune {
        println!(
            "  prune       {} (next: {}), repack over {}% unused",
            p.schedule.as_str(),
            next(&p.schedule),
            p.max_unused * 100.0
        );
    }
    if !plan.notify.is_empty() {
        println!("  notify      {}", plan.notify.join(", "));
    }
    if let Some(st) = st {
        match &st.last_run {
            Some(r) => println!(
                "  last run    {} {} (repo status {})",
                super::fmt::local_time(&r.finished),
                r.status,
                r.id
            ),
            None => println!("  last run    never on this host"),
        }
        for (what, r) in [("check", &st.last_check), ("prune", &st.last_prune)] {
            if let Some(r) = r {
                println!(
                    "  last {what}  {} {} (repo status {})",
                    super::fmt::local_time(&r.finished),
                    r.status,
                    r.id
                );
            }
        }
    }
}

fn next(s: &repo::plan::Schedule) -> String {
    s.next_after(Utc::now())
        .map(|t| super::fmt::local_time(&t))
        .unwrap_or_else(|| "never".into())
}

/// "after each run, structure only", or "off".
fn describe_check(plan: &Plan) -> String {
    if plan.check.enabled {
        format!("after each run, {}", plan.check.describe_reads())
    } else {
        "off after runs".into()
    }
}

pub fn plans(g: &GlobalOpts) -> Result<i32> {
    let cfg = load(g)?;
    let dir = state_dir()?;
    if g.json {
        let list: Vec<serde_json::Value> = cfg
            .plans
            .values()
            .map(|p| {
                let st = PlanState::load(&dir, &p.name);
                serde_json::json!({
                    "plan": p,
                    "next_run": p.schedule.as_ref().and_then(|s| s.next_after(Utc::now())),
                    "last_run": st.last_run,
                    "last_success": st.last_success,
                    "next_check": p.scheduled_check.as_ref().and_then(|c| c.schedule.as_ref()).and_then(|s| s.next_after(Utc::now())),
                    "last_check": st.last_check,
                    "next_prune": p.prune.as_ref().and_then(|s| s.schedule.next_after(Utc::now())),
                    "last_prune": st.last_prune,
                })
            })
            .collect();
        print_json(&list)?;
        return Ok(exit::OK);
    }
    if cfg.plans.is_empty() {
        println!("{} defines no plans", cfg.path.display());
    }
    for plan in cfg.plans.values() {
        print_plan(&cfg, plan, Some(&PlanState::load(&dir, &plan.name)));
    }
    Ok(exit::OK)
}

fn state_dir() -> Result<PathBuf> {
    state::default_dir().context("cannot find a state directory: set HOME or XDG_STATE_HOME")
}

/// Opens configured repositories with the global options' cache and lock wait; a
/// repository without a password source uses the usual flags, variables or prompt.
struct CliOpener<'a>(&'a GlobalOpts);

impl Opener for CliOpener<'_> {
    fn open(&self, conf: &RepositoryConf) -> repo::Result<std::sync::Arc<Repository>> {
        let g = self.0;
        let fallback = match conf.password {
            repo::plan::PasswordSource::Ask => {
                let loc = g.location_of(&conf.location).map_err(invalid)?;
                let pw = g
                    .password(&loc, super::context::Purpose::Open)
                    .map_err(invalid)?;
                Some(repo::secret::Password::new(pw.to_vec()))
            }
            _ => None,
        };
        let cache = g.cache_root().map_err(invalid)?;
        let mut r = repo::plan::open_repository(conf, &cache, fallback.as_ref())?;
        r.set_lock_wait(g.lock_wait().map_err(invalid)?);
        Ok(std::sync::Arc::new(r))
    }
}

fn invalid(e: anyhow::Error) -> repo::Error {
    match e.downcast::<repo::Error>() {
        Ok(e) => e,
        Err(e) => repo::Error::Invalid(format!("{e:#}")),
    }
}

pub fn run(g: &GlobalOpts, a: RunArgs) -> Result<i32> {
    if a.dry_run && a.task != Task::Backup {
        bail!(repo::Error::Invalid(
            "--dry-run shows what a backup run would do; it does not apply to --task check or prune".into()
        ));
    }
    let cfg = load(g)?;
    let names: Vec<String> = match &a.plan {
        Some(p) => vec![p.clone()],
        None => cfg.plans.keys().cloned().collect(),
    };
    let env = RunEnv {
        config: &cfg,
        opener: &CliOpener(g),
        state_dir: state_dir()?,
        journal_root: state::state_root().context("cannot find a state directory")?,
        command: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        operation: None,
        token: None,
    };
    let ctx = g.ctx();
    let mut reports = Vec::new();
    for name in names {
        let req = RunRequest {
            plan: name,
            dry_run: a.dry_run,
            task: a.task,
        };
        let report = run::run(&env, &req, &ctx)?;
        if !g.json {
            print_report(&report);
        }
        reports.push(report);
        if ctx.cancelled() {
            break;
        }
    }
    if g.json {
        match (a.all, reports.as_slice()) {
            (false, [one]) => print_json(one)?,
            _ => print_json(&reports)?,
        }
    }
    let worst = reports.iter().map(|r| r.status).max().unwrap_or(Status::Ok);
    Ok(match worst {
        Status::Ok => exit::OK,
        Status::Warnings => exit::INCOMPLETE,
        Status::Skipped | Status::Failed => exit::ERROR,
        Status::Cancelled => exit::CANCELLED,
    })
}

fn print_report(r: &RunReport) {
    let dry = if r.dry_run { " (dry run)" } else { "" };
    println!(
        "plan {}{dry}: {} — operation {}",
        r.plan,
        r.status.as_str(),
        r.operation
    );
    for s in &r.steps {
        let err = s
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        println!(
            "  {:<12} {:<8} {:>7.1}s{err}",
            s.name,
            s.status.as_str(),
            s.seconds
        );
    }
    for h in &r.hooks {
        let how = if h.ok() {
            "ok".to_string()
        } else {
            h.describe()
        };
        println!("  hook {:<7} {how}", h.hook);
    }
    for n in &r.notifications {
        let err = n
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let how = if n.ok { "sent" } else { "FAILED" };
        println!(
            "  notify {} via {} ({:?}) {how}{err}",
            n.target, n.via, n.event
        );
    }
    if let Some(id) = &r.snapshot {
        println!("  snapshot {}", &id[..8.min(id.len())]);
    }
    if let Some(e) = &r.error {
        println!("  error: {e}");
    }
}

/// `history` (the global `--plan PLAN` picks that plan's repository and operations).
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Only operations of this kind (snapshot, restore, check, forget, prune, copy, key,
    /// repair, unlock, run, follow)
    #[arg(long)]
    kind: Option<String>,
    /// Only failed or skipped operations
    #[arg(long)]
    failed: bool,
    /// Only operations started since this time (e.g. "7d", "2026-11-28")
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
}

pub fn history(g: &GlobalOpts, a: HistoryArgs) -> Result<i32> {
    let since = a
        .since
        .as_deref()
        .map(|t| {
            repo::timespec::parse_time(t, Utc::now()).with_context(|| format!("--since {t:?}"))
        })
        .transpose()?;
    let req = repo::ops::history::HistoryRequest {
        plan: g.plan.clone(),
        kind: a.kind,
        failed: a.failed,
        since,
    };
    let repo = g.open(false)?;
    let report = repo::ops::history::run(&repo, &req)?;
    for (name, why) in &report.unreadable {
        eprintln!("warning: {name}: {why}");
    }
    if g.json {
        print_json(&report.records)?;
        return Ok(exit::OK);
    }
    if report.records.is_empty() {
        println!("no operations match");
    }
    for r in &report.records {
        let secs = (r.finished - r.started).num_milliseconds() as f64 / 1000.0;
        let plan = r
            .plan
            .as_deref()
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default();
        println!(
            "{}  {}  {:<9} {:<9} {:>7.1}s  {}@{}{plan}{}",
            r.id,
            super::fmt::local_time(&r.started),
            r.kind,
            r.result,
            secs,
            r.user,
            r.host,
            r.error
                .as_deref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

/// `status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The operation id (or a unique prefix), as `run`, `history` and notifications print it
    id: String,
}

pub fn status(g: &GlobalOpts, a: StatusArgs) -> Result<i32> {
    let repo = g.open(false)?;
    let r = repo::ops::history::status(&repo, &a.id)?;
    if g.json {
        print_json(&r)?;
        return Ok(exit::OK);
    }
    println!("operation {} ({})", r.id, r.kind);
    if let Some(p) = &r.plan {
        println!("  plan      {p}");
    }
    println!("  by        {}@{}", r.user, r.host);
    println!("  command   {}", r.command.join(" "));
    println!(
        "  ran       {} → {}",
        super::fmt::local_time(&r.started),
        super::fmt::local_time(&r.finished)
    );
    println!("  result    {}", r.result);
    if let Some(e) = &r.error {
        println!("  error     {e}");
    }
    if !r.report.is_null() {
        println!("  report    {}", serde_json::to_string_pretty(&r.report)?);
    }
    Ok(exit::OK)
}
