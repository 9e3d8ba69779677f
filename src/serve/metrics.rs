//! Prometheus metrics (`GET /metrics`, text format, `prometheus-client`): per plan, per
//! repository, jobs and HTTP requests. Plan and job values are set as jobs end; queue
//! lengths, followers and next-run times when scraped; repository statistics by a
//! background pass at start and after each job that changed a repository
//! ([`super::Service::refresh_stats`]: they cost a walk of the index).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::follow::FollowView;
use super::jobs::{JobState, JobView};
use crate::ops::run::Task;

type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

/// The steps of a run's report.
fn steps(report: &serde_json::Value) -> &[serde_json::Value] {
    report
        .get("steps")
        .and_then(|s| s.as_array())
        .map_or(&[], Vec::as_slice)
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    http: Family<Labels, Counter>,
    jobs_total: Family<Labels, Counter>,
    jobs: Family<Labels, Gauge>,
    plan_last_success: Family<Labels, FGauge>,
    plan_last_run: Family<Labels, FGauge>,
    plan_last_ok: Family<Labels, Gauge>,
    plan_duration: Family<Labels, FGauge>,
    plan_bytes_added: Family<Labels, Gauge>,
    plan_files: Family<Labels, Gauge>,
    plan_next_run: Family<Labels, FGauge>,
    task_next_run: Family<Labels, FGauge>,
    task_last_run: Family<Labels, FGauge>,
    task_last_ok: Family<Labels, Gauge>,
    task_skipped: Family<Labels, Counter>,
    repo_size: Family<Labels, Gauge>,
    repo_snapshots: Family<Labels, Gauge>,
    repo_dedup: Family<Labels, FGauge>,
    repo_compression: Family<Labels, FGauge>,
    repo_findings: Family<Labels, Gauge>,
    skipped: Family<Labels, Counter>,
    follow_up: Family<Labels, Gauge>,
    follow_lag: Family<Labels, FGauge>,
    follow_behind: Family<Labels, Gauge>,
    follow_covered: Family<Labels, FGauge>,
    follow_gaps: Family<Labels, Gauge>,
    follow_restarts: Family<Labels, Gauge>,
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            registry: Mutex::new(Registry::with_prefix("repo")),
            http: Family::default(),
            jobs_total: Family::default(),
            jobs: Family::default(),
            plan_last_success: Family::default(),
            plan_last_run: Family::default(),
            plan_last_ok: Family::default(),
            plan_duration: Family::default(),
            plan_bytes_added: Family::default(),
            plan_files: Family::default(),
            plan_next_run: Family::default(),
            task_next_run: Family::default(),
            task_last_run: Family::default(),
            task_last_ok: Family::default(),
            task_skipped: Family::default(),
            repo_size: Family::default(),
            repo_snapshots: Family::default(),
            repo_dedup: Family::default(),
            repo_compression: Family::default(),
            repo_findings: Family::default(),
            skipped: Family::default(),
            follow_up: Family::default(),
            follow_lag: Family::default(),
            follow_behind: Family::default(),
            follow_covered: Family::default(),
            follow_gaps: Family::default(),
            follow_restarts: Family::default(),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register(
                "http_requests",
                "HTTP requests by route, method and status",
                m.http.clone(),
            );
            r.register(
                "jobs",
                "Jobs ended, by kind and result",
                m.jobs_total.clone(),
            );
            r.register(
                "jobs_current",
                "Jobs queued or running now (state)",
                m.jobs.clone(),
            );
            r.register(
                "plan_last_success_timestamp_seconds",
                "When the plan last succeeded",
                m.plan_last_success.clone(),
            );
            r.register(
                "plan_last_run_timestamp_seconds",
                "When the plan's last run ended",
                m.plan_last_run.clone(),
            );
            r.register(
                "plan_last_run_success",
                "1 if the plan's last run succeeded (ok or warnings)",
                m.plan_last_ok.clone(),
            );
            r.register(
                "plan_last_run_duration_seconds",
                "How long the plan's last run took",
                m.plan_duration.clone(),
            );
            r.register(
                "plan_last_run_bytes_added",
                "Bytes the plan's last run added to the repository",
                m.plan_bytes_added.clone(),
            );
            r.register(
                "plan_last_run_files",
                "Files in the plan's last snapshot",
                m.plan_files.clone(),
            );
            r.register(
                "plan_next_run_timestamp_seconds",
                "When the scheduler next runs the plan",
                m.plan_next_run.clone(),
            );
            r.register(
                "plan_task_next_run_timestamp_seconds",
                "When the scheduler next runs the plan's check or prune (task)",
                m.task_next_run.clone(),
            );
            r.register(
                "plan_task_last_run_timestamp_seconds",
                "When the plan's last check or prune (task) ended",
                m.task_last_run.clone(),
            );
            r.register(
                "plan_task_last_run_success",
                "1 if the plan's last check or prune (task) succeeded",
                m.task_last_ok.clone(),
            );
            r.register(
                "plan_task_runs_skipped",
                "Scheduled checks or prunes skipped because the previous one was still going",
                m.task_skipped.clone(),
            );
            r.register(
                "plan_runs_skipped",
                "Scheduled runs skipped because the previous one was still going",
                m.skipped.clone(),
            );
            r.register(
                "repository_size_bytes",
                "Bytes the repository stores",
                m.repo_size.clone(),
            );
            r.register(
                "repository_snapshots",
                "Snapshots in the repository",
                m.repo_snapshots.clone(),
            );
            r.register(
                "repository_dedup_ratio",
                "Raw bytes of all snapshots / unique raw bytes",
                m.repo_dedup.clone(),
            );
            r.register(
                "repository_compression_ratio",
                "Unique raw bytes / stored bytes",
                m.repo_compression.clone(),
            );
            r.register(
                "follow_up",
                "1 while the plan's oplog follower reads the oplog",
                m.follow_up.clone(),
            );
            r.register(
                "follow_lag_seconds",
                "How far the follower's restorable end is behind the server's present (server clock)",
                m.follow_lag.clone(),
            );
            r.register(
                "follow_behind_head_seconds",
                "Seconds of oplog between the server's newest write and what the follower has read",
                m.follow_behind.clone(),
            );
            r.register(
                "follow_covered_until_timestamp_seconds",
                "Point-in-time restores reach up to here",
                m.follow_covered.clone(),
            );
            r.register(
                "follow_gaps",
                "Oplog ranges lost since the service started (the oplog rolled over)",
                m.follow_gaps.clone(),
            );
            r.register(
                "follow_restarts",
                "Times the follower was restarted after stopping",
                m.follow_restarts.clone(),
            );
            r.register(
                "repository_check_findings",
                "Errors the last check or verification found",
                m.repo_findings.clone(),
            );
        }
        m
    }

    /// One HTTP request answered.
    pub fn http(&self, route: &str, method: &str, status: u16) {
        self.http
            .get_or_create(&l(&[
                ("route", route),
                ("method", method),
                ("status", &status.to_string()),
            ]))
            .inc();
    }

    /// A scheduled run of `task` was skipped.
    pub fn skipped(&self, plan: &str, task: Task) {
        match task {
            Task::Backup => self.skipped.get_or_create(&l(&[("plan", plan)])).inc(),
            t => self
                .task_skipped
                .get_or_create(&l(&[("plan", plan), ("task", t.as_str())]))
                .inc(),
        };
    }

    /// A plan's check or prune ended (`end` seconds since the epoch).
    fn task_ended(&self, plan: &str, task: &str, end: f64, ok: bool) {
        let p = l(&[("plan", plan), ("task", task)]);
        self.task_last_run.get_or_create(&p).set(end);
        self.task_last_ok.get_or_create(&p).set(ok as i64);
    }

    /// A job ended.
    pub fn job_finished(&self, v: &JobView) {
        self.jobs_total
            .get_or_create(&l(&[("kind", &v.kind), ("result", v.state.as_str())]))
            .inc();
        let repo = l(&[("repository", &v.repository)]);
        if v.kind == "verify" {
            if let Some(d) = v.report.get("damaged").and_then(|d| d.as_array()) {
                self.repo_findings.get_or_create(&repo).set(d.len() as i64);
            }
        }
        let Some(plan) = &v.plan else { return };
        let p = l(&[("plan", plan)]);
        let end = v
            .finished
            .map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0);
        let ok = matches!(v.state, JobState::Ok | JobState::Warnings);
        if v.kind != "run" {
            self.task_ended(plan, &v.kind, end, ok);
            self.check_findings(&repo, &v.report);
            return;
        }
        self.plan_last_run.get_or_create(&p).set(end);
        self.plan_last_ok.get_or_create(&p).set(ok as i64);
        if ok {
            self.plan_last_success.get_or_create(&p).set(end);
        }
        if let (Some(s), Some(f)) = (v.started, v.finished) {
            let secs = (f - s).num_milliseconds() as f64 / 1000.0;
            self.plan_duration.get_or_create(&p).set(secs);
        }
        let r = &v.report;
        if let Some(b) = r.get("bytes_added").and_then(|b| b.as_i64()) {
            self.plan_bytes_added.get_or_create(&p).set(b);
        }
        for s in steps(r) {
            if s.get("name").and_then(|n| n.as_str()) == Some("snapshot") {
                if let Some(f) = s.pointer("/report/summary/files").and_then(|f| f.as_i64()) {
                    self.plan_files.get_or_create(&p).set(f);
                }
            }
        }
        self.check_findings(&repo, r);
    }

    /// The findings of a run's check step, if it had one.
    fn check_findings(&self, repo: &Labels, report: &serde_json::Value) {
        for s in steps(report) {
            if s.get("name").and_then(|n| n.as_str()) == Some("check") {
                if let Some(f) = s.pointer("/report/findings").and_then(|f| f.as_array()) {
                    self.repo_findings.get_or_create(repo).set(f.len() as i64);
                }
            }
        }
    }

    /// A plan's remembered last run (at start, from this host's plan state).
    pub fn plan_state(&self, plan: &str, st: &crate::plan::state::PlanState) {
        for (task, r) in [("check", &st.last_check), ("prune", &st.last_prune)] {
            if let Some(r) = r {
                let ok = matches!(r.status.as_str(), "ok" | "warnings");
                self.task_ended(plan, task, r.finished.timestamp() as f64, ok);
            }
        }
        let p = l(&[("plan", plan)]);
        if let Some(t) = st.last_success {
            self.plan_last_success
                .get_or_create(&p)
                .set(t.timestamp() as f64);
        }
        if let Some(r) = &st.last_run {
            self.plan_last_run
                .get_or_create(&p)
                .set(r.finished.timestamp() as f64);
            let ok = matches!(r.status.as_str(), "ok" | "warnings");
            self.plan_last_ok.get_or_create(&p).set(ok as i64);
        }
    }

    /// When the scheduler next runs `plan`'s `task`.
    pub fn next_run(&self, plan: &str, task: Task, at: chrono::DateTime<chrono::Utc>) {
        let at = at.timestamp() as f64;
        match task {
            Task::Backup => self.plan_next_run.get_or_create(&l(&[("plan", plan)])),
            t => self
                .task_next_run
                .get_or_create(&l(&[("plan", plan), ("task", t.as_str())])),
        }
        .set(at);
    }

    /// A repository's statistics.
    pub fn repository(&self, name: &str, s: &crate::ops::stats::RepoStats) {
        let r = l(&[("repository", name)]);
        self.repo_size.get_or_create(&r).set(s.size_on_disk as i64);
        self.repo_snapshots
            .get_or_create(&r)
            .set(s.snapshots as i64);
        self.repo_dedup.get_or_create(&r).set(s.dedup_ratio);
        self.repo_compression
            .get_or_create(&r)
            .set(s.compression_ratio);
    }

    /// The text exposition, with job counts and followers as of now.
    pub fn render(&self, queued: usize, running: usize, follows: &[FollowView]) -> String {
        for f in follows {
            let p = l(&[("plan", &f.plan)]);
            self.follow_up
                .get_or_create(&p)
                .set((f.state == "running") as i64);
            self.follow_gaps.get_or_create(&p).set(f.gaps as i64);
            self.follow_restarts
                .get_or_create(&p)
                .set(f.restarts as i64);
            if let Some(b) = f.behind_head_secs {
                self.follow_behind.get_or_create(&p).set(b as i64);
            }
            if let (Some(lag), Some(c)) = (f.lag_secs(), f.covered_until) {
                self.follow_lag.get_or_create(&p).set(lag);
                self.follow_covered
                    .get_or_create(&p)
                    .set(c.timestamp() as f64);
            }
        }
        self.jobs
            .get_or_create(&l(&[("state", "queued")]))
            .set(queued as i64);
        self.jobs
            .get_or_create(&l(&[("state", "running")]))
            .set(running as i64);
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if encode(&mut out, &r).is_err() {
            out.clear();
        }
        out
    }
}
