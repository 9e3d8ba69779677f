//! `repo serve`: one long-running process per host that runs plans on their schedules,
//! exposes every operation over an authenticated JSON API (`api/`, one module per URL
//! subtree), serves Prometheus metrics, and shuts down without leaving half a snapshot.
//!
//! Threads: the HTTP server is a small tokio runtime (`run`); handlers that touch the
//! repository run on its blocking pool; every operation that writes or takes long is a
//! job on its own thread (`jobs.rs`, at most `[service] max-jobs` at once); the scheduler
//! is one thread (`scheduler.rs`). Handlers only translate HTTP into `ops` requests and
//! reports into JSON.

pub mod api;
pub mod audit;
mod auth;
pub mod follow;
pub mod jobs;
mod metrics;
mod openapi;
pub mod problem;
mod scheduler;
mod stats;
pub mod tokens;
pub mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::journal::{self, Record, Sink};
use crate::ops::context::{CancelToken, Ctx};
use crate::ops::run::{Opener, Task};
use crate::plan::{Config, RepositoryConf};
use crate::repository::Repository;
use jobs::{JobSpec, JobView, Jobs, Outcome, Work};
use problem::{ApiResult, Problem};
use tokens::TokenStore;

/// How to start.
pub struct ServeOptions {
    /// Overrides `[service] listen`.
    pub listen: Option<SocketAddr>,
    /// Serve plain HTTP on a non-loopback address.
    pub insecure_http: bool,
    /// Overrides `[service] tls-cert` / `tls-key`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// This host's state (plan state, journal).
    pub state_root: PathBuf,
    /// The local cache (indexes).
    pub cache_root: PathBuf,
    /// The token file.
    pub tokens: TokenStore,
}

/// One repository's place in the cache: empty until opened.
type Slot = Arc<Mutex<Option<Arc<Repository>>>>;

/// Configured repositories, each opened once and shared by every job and request, so
/// they share one local index.
pub struct RepoCache {
    confs: std::collections::BTreeMap<String, RepositoryConf>,
    cache_root: PathBuf,
    lock_wait: Duration,
    /// One slot per repository: opening one (a key derivation, the local index) holds
    /// only its own slot, so requests for the others go on meanwhile.
    open: Mutex<HashMap<String, Slot>>,
}

impl RepoCache {
    /// The repository called `name`, opened on first use.
    pub fn get(&self, name: &str) -> Result<Arc<Repository>> {
        let conf = self
            .confs
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("no repository {name:?} in the config file")))?;
        let slot = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        if matches!(conf.password, crate::plan::PasswordSource::Ask) {
            return Err(Error::Invalid(format!(
                "repository {name:?} needs password-file, password-env or password-command for the service"
            )));
        }
        let mut r = crate::plan::open_repository(conf, &self.cache_root, None)?;
        r.set_lock_wait(self.lock_wait);
        let r = Arc::new(r);
        *slot = Some(r.clone());
        Ok(r)
    }

    /// [`RepoCache::get`] with the local index brought up to date (before a job).
    /// A repository deleted and created again at its location since it was opened (an
    /// operator starting over) is opened again: jobs run on what is there now, never
    /// with the old key.
    pub fn fresh(&self, name: &str) -> Result<Arc<Repository>> {
        let mut r = self.get(name)?;
        if !r.is_same_repository()? {
            self.forget(name);
            r = self.get(name)?;
        }
        r.refresh_index()?;
        Ok(r)
    }

    /// Drops the open handle of `name`: the next use opens it again.
    fn forget(&self, name: &str) {
        let slot = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        if let Some(slot) = slot {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

impl Opener for RepoCache {
    fn open(&self, conf: &RepositoryConf) -> Result<Arc<Repository>> {
        self.fresh(&conf.name)
    }
}

/// The running service, shared by handlers, jobs and the scheduler.
pub struct Service {
    pub config: Config,
    pub repos: RepoCache,
    pub jobs: Arc<Jobs>,
    pub tokens: TokenStore,
    metrics: Arc<metrics::Metrics>,
    followers: follow::Followers,
    /// Repositories whose statistics are being computed, and whether they changed since.
    stats_busy: Mutex<HashMap<String, bool>>,
    /// Statistics threads, joined at shutdown: a walk still running when `main` returns
    /// would race the process's exit (RocksDB's static destructors) and kill it.
    stats_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Cancelled at shutdown: no new statistics walks, running ones stop at their next check.
    stats_stop: CancelToken,
    /// Each repository's latest statistics, and when they were computed.
    stats_cache: Mutex<HashMap<String, (DateTime<Utc>, crate::ops::stats::RepoStats)>>,
    limiter: auth::Limiter,
    /// Every HTTP request.
    audit: audit::AuditLog,
    /// Browsers signed in to the dashboard.
    sessions: web::session::Sessions,
    /// Whether session cookies get `Secure` (served over TLS).
    secure_cookies: bool,
    state_root: PathBuf,
    pub started: DateTime<Utc>,
}

impl Service {
    /// The repository a request names, or the default one.
    pub fn repository_name(&self, asked: Option<&str>) -> ApiResult<String> {
        if let Some(n) = asked {
            if !self.config.repositories.contains_key(n) {
                return Err(Problem::not_found(format!("no repository {n:?}")));
            }
            return Ok(n.to_string());
        }
        if let Some(d) = &self.config.service.repository {
            return Ok(d.clone());
        }
        let mut names = self.config.repositories.keys();
        match (names.next(), names.next()) {
            (Some(one), None) => Ok(one.clone()),
            (None, _) => Err(Problem::unavailable("the config file defines no repository")),
            _ => Err(Problem::invalid(
                "several repositories are configured: pass ?repository=NAME (or set [service] repository)",
            )),
        }
    }

    /// The open repository a request names.
    pub fn repository(&self, asked: Option<&str>) -> ApiResult<(String, Arc<Repository>)> {
        let name = self.repository_name(asked)?;
        let r = self.repos.get(&name)?;
        Ok((name, r))
    }

    /// Queues a run of `plan`'s `task`.
    pub fn run_plan(
        self: &Arc<Self>,
        plan: &str,
        task: Task,
        requested_by: &str,
    ) -> ApiResult<JobView> {
        let p = self
            .config
            .plan(plan)
            .map_err(|e| Problem::not_found(e.to_string()))?;
        let svc = self.clone();
        let token = (requested_by != "scheduler").then(|| requested_by.to_string());
        let plan_name = p.name.clone();
        let repo_name = p.repository.clone();
        let work: Work = Box::new(move |ctx, id| {
            let env = crate::ops::run::RunEnv {
                config: &svc.config,
                opener: &svc.repos,
                state_dir: svc.state_root.join("plans"),
                journal_root: svc.state_root.clone(),
                command: vec![
                    "repo-serve".into(),
                    "run".into(),
                    plan_name.clone(),
                    format!("--task={}", task.as_str()),
                ],
                operation: Some(id.to_string()),
                token,
            };
            let req = crate::ops::run::RunRequest {
                plan: plan_name.clone(),
                dry_run: false,
                task,
            };
            let r = crate::ops::run::run(&env, &req, ctx);
            let mut out = Outcome::of(r, |r| r.status == crate::ops::run::Status::Warnings);
            match out.report.get("status").and_then(|s| s.as_str()) {
                Some("failed" | "skipped") => out.state = jobs::JobState::Failed,
                Some("cancelled") => out.state = jobs::JobState::Cancelled,
                _ => {}
            }
            if out.error.is_none() {
                out.error = out.report["error"].as_str().map(str::to_string);
            }
            svc.refresh_stats(&repo_name);
            out
        });
        self.jobs.submit(
            JobSpec {
                kind: task.record_kind(),
                plan: Some(p.name.clone()),
                repository: p.repository.clone(),
                requested_by: requested_by.to_string(),
            },
            work,
        )
    }

    /// Queues `f` against repository `repo` as a job of `kind` whose end is recorded in
    /// the repository's operation log under the job's id, with the caller's token.
    pub fn submit(
        self: &Arc<Self>,
        kind: &'static str,
        repo: String,
        caller: &str,
        command: Vec<String>,
        f: impl FnOnce(&Repository, &Ctx) -> Outcome + Send + 'static,
    ) -> ApiResult<JobView> {
        let svc = self.clone();
        let token = caller.to_string();
        let name = repo.clone();
        let work: Work = Box::new(move |ctx, id| {
            let started = Utc::now();
            let (out, sink) = match svc.repos.fresh(&name) {
                Ok(r) => (f(&r, ctx), Some(Sink::of(&r))),
                Err(e) => (Outcome::of::<()>(Err(e), |_| false), None),
            };
            let mut rec = Record::start(kind, &command);
            rec.id = id.to_string();
            rec.token = Some(token);
            rec.started = started;
            rec.finish(out.state.as_str(), out.report.clone(), out.error.clone());
            svc.record(&name, sink.as_ref(), &rec);
            if matches!(kind, "snapshot" | "forget") {
                svc.refresh_stats(&name);
            }
            out
        });
        self.jobs.submit(
            JobSpec {
                kind,
                plan: None,
                repository: repo,
                requested_by: caller.to_string(),
            },
            work,
        )
    }
}

impl Service {
    /// Writes `rec` to repository `repo`'s operation log (this host's journal when the
    /// repository cannot take it).
    fn record(&self, repo: &str, sink: Option<&Sink>, rec: &Record) {
        let Some(conf) = self.config.repositories.get(repo) else {
            return;
        };
        if let Err(e) = journal::record(&self.state_root, &conf.location, sink, rec) {
            tracing::warn!("the operation log record could not be kept: {e}");
        }
    }
}

/// Refuses a non-loopback address without TLS unless plain HTTP was asked for.
fn check_listen(addr: SocketAddr, tls: bool, insecure: bool) -> Result<()> {
    if !addr.ip().is_loopback() && !tls && !insecure {
        return Err(Error::Invalid(format!(
            "refusing to serve plain HTTP on {addr}, which is not a loopback address: give tls-cert and tls-key ([service] or --tls-cert/--tls-key), or --insecure-http"
        )));
    }
    Ok(())
}

/// Runs the service until SIGTERM or SIGINT: then it stops taking requests and jobs, lets
/// running jobs finish for `[service] grace`, cancels the rest (they commit nothing half
/// done and release their locks) and returns.
pub fn run(config: Config, opts: ServeOptions) -> Result<()> {
    let sc = config.service.clone();
    let listen = opts.listen.unwrap_or(sc.listen);
    let tls = opts.tls.clone().or(sc.tls.clone());
    check_listen(listen, tls.is_some(), opts.insecure_http)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let m2 = metrics.clone();
    let svc = Arc::new(Service {
        repos: RepoCache {
            confs: config.repositories.clone(),
            cache_root: opts.cache_root.clone(),
            lock_wait: Duration::from_secs(sc.lock_wait_secs),
            open: Mutex::new(HashMap::new()),
        },
        jobs: Jobs::new(sc.max_jobs, Box::new(move |v| m2.job_finished(v))),
        tokens: opts.tokens,
        metrics,
        followers: follow::Followers::default(),
        stats_busy: Mutex::default(),
        stats_threads: Mutex::default(),
        stats_stop: CancelToken::new(),
        stats_cache: Mutex::default(),
        limiter: auth::Limiter::default(),
        audit: audit::AuditLog::new(&opts.state_root),
        sessions: web::session::Sessions::default(),
        secure_cookies: tls.is_some(),
        state_root: opts.state_root,
        started: Utc::now(),
        config,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("serve")
        .build()
        .map_err(|e| Error::Internal(format!("starting the HTTP runtime: {e}")))?;
    rt.block_on(serve(svc.clone(), listen, tls))?;
    let grace = Duration::from_secs(sc.grace_secs);
    tracing::info!(
        "shutting down: waiting up to {}s for running jobs",
        grace.as_secs()
    );
    svc.jobs.shutdown(grace);
    svc.stop_stats();
    tracing::info!("stopped");
    Ok(())
}

async fn serve(
    svc: Arc<Service>,
    listen: SocketAddr,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<()> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| Error::io(format!("listening on {listen}"), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("listening", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("listening", e))?;
    let app = api::router(svc.clone());
    let handle = axum_server::Handle::new();
    let scheduler = scheduler::start(svc.clone());
    follow::start(&svc);
    for name in svc.config.repositories.keys() {
        svc.refresh_stats(name);
    }
    {
        let handle = handle.clone();
        let svc = svc.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: no new requests or jobs");
            svc.jobs.close();
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        });
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to learn the port (`--listen 127.0.0.1:0`).
    println!("listening on {scheme}://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, scheme, "serving");
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| {
                    Error::Invalid(format!(
                        "TLS certificate {} / key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
            axum_server::from_tcp_rustls(listener, cfg)
                .handle(handle)
                .serve(make)
                .await
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(make)
                .await
        }
    };
    scheduler.stop();
    tracing::info!("sealing the oplog followers");
    tokio::task::spawn_blocking({
        let svc = svc.clone();
        move || svc.followers.stop()
    })
    .await
    .map_err(|e| Error::Internal(format!("stopping the followers: {e}")))?;
    served.map_err(|e| Error::io("serving HTTP", e))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
