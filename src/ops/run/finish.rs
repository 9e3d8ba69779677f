//! The edges of a run: hooks with the run in their environment, the dry run, the report
//! file, notifications and this host's plan state.

use std::path::PathBuf;
use std::time::Instant;

use chrono::Utc;

use super::{RunEnv, RunReport, Runner, Status, Task};
use crate::error::Result;
use crate::journal::{self, Record, Sink};
use crate::ops::forget;
use crate::plan::hooks::{self, HookOutcome};
use crate::plan::notify::{self, Event, Notice};
use crate::plan::state::{PlanState, RunRecord};
use crate::plan::{Plan, RepositoryConf};

/// Where a run's JSON report is written (hooks get the path).
fn report_path(env: &RunEnv, report: &RunReport) -> PathBuf {
    env.state_dir
        .join("runs")
        .join(format!("{}.json", report.operation))
}

/// Writes (or rewrites) the run's report file.
fn write_report(env: &RunEnv, report: &RunReport) -> std::io::Result<()> {
    let path = report_path(env, report);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let body = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(&path, body)
}

impl Runner<'_> {
    fn write_report(&self) {
        if let Err(e) = write_report(self.env, &self.report) {
            let path = report_path(self.env, &self.report);
            self.ctx.warn(
                None,
                format!("writing the run report {}: {e}", path.display()),
            );
        }
    }

    /// Runs hook `name` if the plan has one. A failing hook other than `before` makes
    /// the run's status at least `warnings` (the backup itself stands).
    pub(super) fn hook(&mut self, name: &str, cmd: Option<&str>) -> Option<HookOutcome> {
        let cmd = cmd?;
        self.write_report();
        let env = vec![
            ("REPO_HOOK".to_string(), name.to_string()),
            ("REPO_PLAN".to_string(), self.plan.name.clone()),
            (
                "REPO_OPERATION_ID".to_string(),
                self.report.operation.clone(),
            ),
            (
                "REPO_SNAPSHOT_ID".to_string(),
                self.report.snapshot.clone().unwrap_or_default(),
            ),
            (
                "REPO_STATUS".to_string(),
                self.report.status.as_str().to_string(),
            ),
            (
                "REPO_REPORT".to_string(),
                report_path(self.env, &self.report).display().to_string(),
            ),
        ];
        let out = hooks::run(name, cmd, &env, self.plan.hooks.timeout);
        if !out.ok() {
            self.ctx.warn(None, out.describe());
            if name != "before" {
                self.report.status = self.report.status.max(Status::Warnings);
            }
        }
        self.report.hooks.push(out.clone());
        Some(out)
    }

    /// Opens every repository, reads every source's settings and shows what retention
    /// would remove; changes nothing.
    pub(super) fn dry_run(&mut self, repo_conf: &RepositoryConf) {
        let t = Instant::now();
        let repo = match self.env.opener.open(repo_conf) {
            Ok(r) => r,
            Err(e) => return self.step("open".into(), t, Err(e)),
        };
        self.step("open".into(), t, Ok((Status::Ok, serde_json::Value::Null)));
        let t = Instant::now();
        let sources = self.check_sources();
        self.step("sources".into(), t, sources);
        for target in &self.plan.copy_to {
            let t = Instant::now();
            let r = self
                .env
                .config
                .repository(target)
                .and_then(|c| self.env.opener.open(c))
                .map(|_| (Status::Ok, serde_json::Value::Null));
            self.step(format!("copy:{target}"), t, r);
        }
        if let Some(ret) = &self.plan.retention {
            let t = Instant::now();
            let req = self.forget_request(ret, true);
            let r = forget::run(&repo, &req, self.ctx)
                .map(|rep| (Status::Ok, serde_json::to_value(&rep).unwrap_or_default()));
            self.step("forget".into(), t, r);
        }
    }

    /// The plan's paths exist and its MongoDB connection string can be read.
    fn check_sources(&self) -> Result<(Status, serde_json::Value)> {
        for p in &self.plan.paths {
            std::fs::symlink_metadata(p)
                .map_err(|e| crate::Error::io(format!("source {}", p.display()), e))?;
        }
        if let Some(m) = &self.plan.mongodb {
            m.uri.read()?;
        }
        Ok((Status::Ok, serde_json::Value::Null))
    }

    /// Healthchecks-style targets hear that the run started.
    pub(super) fn start_pings(&mut self) {
        let notice = notice(&self.report, Event::Success);
        for name in &self.plan.notify {
            if let Some(t) = self.env.config.notify.get(name) {
                self.report
                    .notifications
                    .extend(notify::ping_start(t, &notice));
            }
        }
    }

    /// The report with its end time, also written to the report file.
    pub(super) fn finish_report(mut self) -> RunReport {
        self.report.finished = Utc::now();
        self.write_report();
        self.report
    }
}

fn notice(r: &RunReport, event: Event) -> Notice {
    let (done, what) = match r.task {
        Task::Backup => ("backed up", String::new()),
        Task::Check => ("checked, no damage found", "check ".to_string()),
        Task::Prune => ("pruned", "prune ".to_string()),
    };
    let message = match r.status {
        Status::Ok => format!("plan {} on {}: {done}", r.plan, r.host),
        Status::Warnings => format!("plan {} on {}: {done}, with warnings", r.plan, r.host),
        Status::Skipped | Status::Failed | Status::Cancelled => format!(
            "plan {} on {}: {what}{} — {}",
            r.plan,
            r.host,
            r.status.as_str(),
            r.error.as_deref().unwrap_or("see the report")
        ),
    };
    Notice {
        event,
        plan: r.plan.clone(),
        task: r.task.as_str().to_string(),
        host: r.host.clone(),
        operation: r.operation.clone(),
        status: r.status.as_str().to_string(),
        error: r.error.clone(),
        snapshot: r.snapshot.clone(),
        seconds: (r.finished - r.started).num_milliseconds() as f64 / 1000.0,
        bytes_added: r.bytes_added,
        message: format!("{message} (repo status {})", r.operation),
    }
}

/// The events a finished run raises, given what this host remembers. A check or prune
/// raises only `failure` and `recovered`: `success` and `stale` speak of backups.
fn events(report: &RunReport, plan: &Plan, before: &PlanState) -> Vec<Event> {
    let failed_before = before
        .last(report.task.as_str())
        .is_some_and(|r| r.status == "failed" || r.status == "skipped");
    if report.task != Task::Backup {
        return match report.status {
            Status::Ok | Status::Warnings if failed_before => vec![Event::Recovered],
            Status::Ok | Status::Warnings => Vec::new(),
            _ => vec![Event::Failure],
        };
    }
    match report.status {
        Status::Ok | Status::Warnings => {
            let mut ev = vec![if report.status == Status::Ok {
                Event::Success
            } else {
                Event::Warnings
            }];
            if failed_before {
                ev.push(Event::Recovered);
            }
            ev
        }
        Status::Skipped | Status::Failed | Status::Cancelled => {
            let mut ev = vec![Event::Failure];
            let since = before.last_success.unwrap_or(report.started);
            let stale = plan.stale_after.is_some_and(|limit| {
                (report.finished - since)
                    .to_std()
                    .is_ok_and(|age| age >= limit)
            });
            if stale {
                ev.push(Event::Stale);
            }
            ev
        }
    }
}

/// Notifies, remembers the run on this host, rewrites the report file and records the run
/// in the repository's operation log (this host's journal when it was not reached).
pub(super) fn finish(
    env: &RunEnv,
    plan: &Plan,
    mut report: RunReport,
    sink: Option<&Sink>,
    location: &str,
) -> RunReport {
    let state_before = PlanState::load(&env.state_dir, &plan.name);
    for event in events(&report, plan, &state_before) {
        let n = notice(&report, event);
        for name in &plan.notify {
            if let Some(t) = env.config.notify.get(name) {
                report.notifications.extend(notify::deliver(t, &n));
            }
        }
    }
    let mut state = state_before;
    state.set_last(
        report.task.as_str(),
        RunRecord {
            id: report.operation.clone(),
            started: report.started,
            finished: report.finished,
            status: report.status.as_str().to_string(),
            snapshot: report.snapshot.clone(),
            error: report.error.clone(),
        },
    );
    if report.task == Task::Backup && matches!(report.status, Status::Ok | Status::Warnings) {
        state.last_success = Some(report.finished);
    }
    if let Err(e) = state.save(&env.state_dir, &plan.name) {
        tracing::warn!("{e}");
    }
    if let Err(e) = write_report(env, &report) {
        tracing::warn!("writing the run report: {e}");
    }
    let mut rec = Record::start(report.task.record_kind(), &env.command);
    rec.id = report.operation.clone();
    rec.plan = Some(plan.name.clone());
    rec.token = env.token.clone();
    rec.host = report.host.clone();
    rec.started = report.started;
    rec.finish(
        report.status.as_str(),
        serde_json::to_value(&report).unwrap_or_default(),
        report.error.clone(),
    );
    if let Err(e) = journal::record(&env.journal_root, location, sink, &rec) {
        tracing::warn!("the operation log record could not be kept: {e}");
    }
    report
}
