//! `run PLAN`: a plan end to end. Before hook; one snapshot of every source (files and
//! MongoDB together); a copy to each copy-to repository; retention (and prune); the check
//! policy; on-success or on-failure, then after. Every step is in the report, the run's
//! status is its worst step's, and notifications and this host's plan state follow.
//!
//! Only a plan that does not exist is an `Err`: anything that goes wrong while running is
//! a failed step in the report, so hooks, notifications and the record still happen.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ops::context::Ctx;
use crate::ops::{check, copy, forget, prune, snapshot};
use crate::plan::hooks::HookOutcome;
use crate::plan::notify::Delivery;

use crate::plan::{Config, Plan, RepositoryConf};
use crate::repository::Repository;
use crate::selection::SnapshotFilter;

mod finish;
mod maintain;
use finish::finish;

/// `run`: which plan.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunRequest {
    /// The plan's name.
    pub plan: String,
    /// Open the repositories and read the sources' settings, change nothing, run no hook.
    pub dry_run: bool,
    /// The backup (default), or only the plan's check or prune.
    pub task: Task,
}

/// What of a plan to run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Hooks, snapshot, copies, retention, the check unless it has its own schedule.
    #[default]
    Backup,
    /// The plan's check policy on its repository.
    Check,
    /// A prune of its repository with the plan's prune settings.
    Prune,
}

impl Task {
    /// All of them, in the order `repo plans` shows them.
    pub const ALL: [Task; 3] = [Task::Backup, Task::Check, Task::Prune];

    /// As in reports, job kinds and the operation log (`run` for a backup).
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Backup => "backup",
            Task::Check => "check",
            Task::Prune => "prune",
        }
    }

    /// The operation-log kind of a run of this task.
    pub fn record_kind(self) -> &'static str {
        match self {
            Task::Backup => "run",
            Task::Check => "check",
            Task::Prune => "prune",
        }
    }

    /// Reads "backup", "check" or "prune".
    pub fn parse(s: &str) -> Result<Task> {
        match s {
            "backup" => Ok(Task::Backup),
            "check" => Ok(Task::Check),
            "prune" => Ok(Task::Prune),
            other => Err(crate::Error::Invalid(format!(
                "task {other:?}: use backup, check or prune"
            ))),
        }
    }

    /// When `plan` runs this task on its own (`None`: never on a schedule).
    pub fn schedule(self, plan: &Plan) -> Option<&crate::plan::Schedule> {
        match self {
            Task::Backup => plan.schedule.as_ref(),
            Task::Check => plan
                .scheduled_check
                .as_ref()
                .and_then(|c| c.schedule.as_ref()),
            Task::Prune => plan.prune.as_ref().map(|p| &p.schedule),
        }
    }
}

/// Opens a configured repository (the face decides how to ask for a password the
/// config does not give).
pub trait Opener: Sync {
    /// The open repository (shared: a service keeps one handle per repository, so its
    /// jobs share one local index).
    fn open(&self, repo: &RepositoryConf) -> Result<std::sync::Arc<Repository>>;
}

/// What the run needs besides the request.
pub struct RunEnv<'a> {
    /// The checked config file.
    pub config: &'a Config,
    /// How to open its repositories.
    pub opener: &'a dyn Opener,
    /// Where this host keeps plan state and run reports.
    pub state_dir: PathBuf,
    /// Where this host keeps operation-log records its repository could not take.
    pub journal_root: PathBuf,
    /// The command line that asked for the run (for the operation log; credentials in
    /// URIs are replaced there).
    pub command: Vec<String>,
    /// The operation id to use (a service's job id); `None`: a new one.
    pub operation: Option<String>,
    /// Who asked, when not this host's user (a service's API token name).
    pub token: Option<String>,
}

/// How a step, or the run, went; ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Done, nothing to report.
    Ok,
    /// Done, with something to look at (files that could not be read, say).
    Warnings,
    /// Not done: the before hook said no, or an earlier step failed.
    Skipped,
    /// Failed.
    Failed,
    /// Stopped on request (Ctrl-C, a service's cancel or shutdown): nothing half done
    /// was committed.
    Cancelled,
}

impl Status {
    /// As in reports and hook variables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warnings => "warnings",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One step of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// snapshot, copy:NAME, forget, check.
    pub name: String,
    pub status: Status,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The verb's own report.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub report: serde_json::Value,
}

/// The whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// Its operation id (sortable).
    pub operation: String,
    pub plan: String,
    pub repository: String,
    pub host: String,
    /// backup, check or prune.
    #[serde(default)]
    pub task: Task,
    pub dry_run: bool,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub status: Status,
    /// Why the run failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The snapshot taken.
    pub snapshot: Option<String>,
    pub bytes_added: u64,
    pub steps: Vec<Step>,
    pub hooks: Vec<HookOutcome>,
    pub notifications: Vec<Delivery>,
}

/// Runs the plan `req.plan`.
pub fn run(env: &RunEnv, req: &RunRequest, ctx: &Ctx) -> Result<RunReport> {
    let plan = env.config.plan(&req.plan)?;
    let repo_conf = env.config.repository(&plan.repository)?;
    let mut r = Runner {
        env,
        plan,
        ctx,
        sink: None,
        report: RunReport {
            operation: env
                .operation
                .clone()
                .unwrap_or_else(crate::journal::operation_id),
            plan: plan.name.clone(),
            repository: repo_conf.name.clone(),
            host: plan.host.clone().unwrap_or_else(crate::sysinfo::hostname),
            task: req.task,
            dry_run: req.dry_run,
            started: Utc::now(),
            finished: Utc::now(),
            status: Status::Ok,
            error: None,
            snapshot: None,
            bytes_added: 0,
            steps: Vec::new(),
            hooks: Vec::new(),
            notifications: Vec::new(),
        },
    };
    if req.dry_run {
        r.dry_run(repo_conf);
        return Ok(r.finish_report());
    }
    if req.task != Task::Backup {
        r.maintain(repo_conf, req.task);
        let sink = r.sink.take();
        let report = r.finish_report();
        return Ok(finish(
            env,
            plan,
            report,
            sink.as_ref(),
            &repo_conf.location,
        ));
    }
    r.start_pings();
    let before = r.hook("before", plan.hooks.before.as_deref());
    if before.as_ref().is_some_and(|h| !h.ok()) {
        let why = before.map(|h| h.describe()).unwrap_or_default();
        r.report.status = Status::Skipped;
        r.report.error = Some(format!("{why}; nothing was backed up"));
    } else {
        r.steps(repo_conf);
        let outcome_hook = match r.report.status {
            Status::Ok | Status::Warnings => ("on-success", plan.hooks.on_success.as_deref()),
            _ => ("on-failure", plan.hooks.on_failure.as_deref()),
        };
        r.hook(outcome_hook.0, outcome_hook.1);
        r.hook("after", plan.hooks.after.as_deref());
    }
    if r.report.status == Status::Skipped {
        r.hook("on-failure", plan.hooks.on_failure.as_deref());
    }
    if ctx.cancelled() {
        r.report.status = Status::Cancelled;
        r.report.error = Some("cancelled".into());
    }
    let sink = r.sink.take();
    let report = r.finish_report();
    Ok(finish(
        env,
        plan,
        report,
        sink.as_ref(),
        &repo_conf.location,
    ))
}

/// A run in progress.
struct Runner<'a> {
    env: &'a RunEnv<'a>,
    plan: &'a Plan,
    ctx: &'a Ctx,
    /// The plan's repository's operation log, once it was opened.
    sink: Option<crate::journal::Sink>,
    report: RunReport,
}

impl Runner<'_> {
    /// Records a step's outcome; the run's status is the worst so far.
    fn step(
        &mut self,
        name: String,
        started: Instant,
        result: Result<(Status, serde_json::Value)>,
    ) {
        let (status, report, error) = match result {
            Ok((s, v)) => (s, v, None),
            Err(e) => (Status::Failed, serde_json::Value::Null, Some(e.to_string())),
        };
        self.step_as(name, started, status, report, error);
    }

    /// Records a step with its status, report and error as given.
    fn step_as(
        &mut self,
        name: String,
        started: Instant,
        status: Status,
        report: serde_json::Value,
        error: Option<String>,
    ) {
        if status == Status::Failed && self.report.error.is_none() {
            self.report.error = error.as_ref().map(|e| format!("{name}: {e}"));
        }
        self.report.status = self.report.status.max(status);
        self.report.steps.push(Step {
            name,
            status,
            seconds: started.elapsed().as_secs_f64(),
            error,
            report,
        });
    }

    /// Snapshot, copies, retention and check, each recorded; a failed snapshot skips
    /// the rest (there is nothing new to copy, and forgetting then would thin the
    /// history without replacing it).
    fn steps(&mut self, repo_conf: &RepositoryConf) {
        let t = Instant::now();
        let repo = match self.env.opener.open(repo_conf) {
            Ok(r) => r,
            Err(e) => return self.step("open".into(), t, Err(e)),
        };
        self.sink = Some(crate::journal::Sink::of(&repo));
        let t = Instant::now();
        let snap = self.snapshot(&repo);
        let id = match snap {
            Ok((status, snap)) => {
                self.report.snapshot = Some(snap.id.to_hex());
                self.report.bytes_added = snap.summary.bytes_added;
                let json = serde_json::to_value(&snap).unwrap_or_default();
                let id = snap.id.to_hex();
                self.step("snapshot".into(), t, Ok((status, json)));
                id
            }
            Err(e) => {
                self.step("snapshot".into(), t, Err(e));
                return;
            }
        };
        for target in &self.plan.copy_to {
            let t = Instant::now();
            let r = self.copy(&repo, target, &id);
            self.step(format!("copy:{target}"), t, r);
        }
        if let Some(ret) = &self.plan.retention {
            let t = Instant::now();
            let r = self.forget(&repo, ret);
            self.step("forget".into(), t, r);
        }
        if self.plan.check.enabled {
            self.check(&repo, &self.plan.check);
        }
    }

    /// A check of `repo` by `policy`: damage fails the step.
    fn check(&mut self, repo: &Repository, policy: &crate::plan::CheckPolicy) {
        let t = Instant::now();
        {
            match check::run(repo, &policy.request(), self.ctx) {
                // Damage fails the step, and its report (the findings) stays in it.
                Ok(rep) if rep.errors() > 0 => {
                    let error = format!("check found {} error(s); see its report", rep.errors());
                    let v = serde_json::to_value(&rep).unwrap_or_default();
                    self.step_as("check".into(), t, Status::Failed, v, Some(error));
                }
                r => {
                    let r =
                        r.map(|rep| (Status::Ok, serde_json::to_value(&rep).unwrap_or_default()));
                    self.step("check".into(), t, r);
                }
            }
        }
    }

    fn snapshot(&self, repo: &Repository) -> Result<(Status, crate::snapshot::Snapshot)> {
        let p = self.plan;
        let mut tags = vec![p.tag()];
        tags.extend(p.tags.iter().cloned());
        let mongodb = match &p.mongodb {
            None => None,
            Some(m) => Some(snapshot::MongoSourceRequest {
                uri: m.uri.read()?,
                dbs: m.databases.clone(),
                collections: m.collections.clone(),
            }),
        };
        let req = snapshot::SnapshotRequest {
            paths: p.paths.clone(),
            mongodb,
            tags,
            host: p.host.clone(),
            excludes: p.excludes.clone(),
            ..Default::default()
        };
        let snap = snapshot::run(repo, &req, self.ctx)?;
        let status = if snap.summary.skipped.is_empty() {
            Status::Ok
        } else {
            Status::Warnings
        };
        Ok((status, snap))
    }

    fn copy(
        &self,
        src: &Repository,
        target: &str,
        id: &str,
    ) -> Result<(Status, serde_json::Value)> {
        let conf = self.env.config.repository(target)?;
        let dst = self.env.opener.open(conf)?;
        let req = copy::CopyRequest {
            snapshots: vec![crate::ops::select::SnapshotRef::id(id)],
            ..Default::default()
        };
        let rep = copy::run(src, &dst, &req, self.ctx)?;
        Ok((Status::Ok, serde_json::to_value(&rep).unwrap_or_default()))
    }

    fn forget(
        &self,
        repo: &Repository,
        ret: &crate::plan::Retention,
    ) -> Result<(Status, serde_json::Value)> {
        let rep = forget::run(repo, &self.forget_request(ret, false), self.ctx)?;
        Ok((Status::Ok, serde_json::to_value(&rep).unwrap_or_default()))
    }

    /// The plan's retention as a forget of its own snapshots (`plan:NAME`).
    fn forget_request(&self, ret: &crate::plan::Retention, dry_run: bool) -> forget::ForgetRequest {
        forget::ForgetRequest {
            policy: ret.policy.clone(),
            filter: SnapshotFilter {
                tags: vec![self.plan.tag()],
                ..Default::default()
            },
            prune: ret.prune.then(prune::PruneRequest::default),
            keep_log: ret.keep_log.clone(),
            dry_run,
            ..Default::default()
        }
    }
}
