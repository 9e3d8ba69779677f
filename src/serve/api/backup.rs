//! `/api/backup/*`: list snapshots, back up (a plan, or part of one), show one snapshot,
//! verify its data, forget it, and the repository's storage statistics.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{blocking, json, J, Q};
use crate::ops::context::Ctx;
use crate::ops::select::SnapshotRef;
use crate::ops::{forget, snapshot, snapshots, stats, verify};
use crate::selection::SnapshotFilter;
use crate::serve::auth::Caller;
use crate::serve::jobs::{JobState, JobView, Outcome};
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::tokens::Role;
use crate::serve::Service;

/// Which repository (default: `[service] repository`, or the only one).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepoQuery {
    pub repository: Option<String>,
}

/// Filters, as `repo snapshots` takes them.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub repository: Option<String>,
    /// Only snapshots of this host.
    pub host: Option<String>,
    /// Only snapshots with this tag.
    pub tag: Option<String>,
    /// Only snapshots of this plan.
    pub plan: Option<String>,
    /// Only snapshots holding this path.
    pub path: Option<String>,
    /// Only the newest N of each series.
    pub latest: Option<usize>,
}

/// Snapshots, oldest first (viewer).
#[utoipa::path(get, path = "/api/backup/list", tag = "backup", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [Object]), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Q(q): Q<ListQuery>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    caller.require(Role::Viewer)?;
    blocking(move || {
        let (_, repo) = svc.repository(q.repository.as_deref())?;
        let mut filter = SnapshotFilter::default();
        filter.hosts.extend(q.host);
        filter.tags.extend(q.tag);
        filter.tags.extend(q.plan.map(|p| format!("plan:{p}")));
        filter.paths.extend(q.path);
        let req = snapshots::SnapshotsRequest {
            filter,
            latest: q.latest,
        };
        let list = snapshots::run(&repo, &req, &Ctx::default())?;
        Ok(Json(list.iter().map(json).collect()))
    })
    .await
}

/// A backup to take: a plan's whole run, or some of a plan's paths now.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CreateBackup {
    /// Run this plan (snapshot, copies, retention, check, hooks, notifications).
    pub plan: Option<String>,
    /// Or: snapshot these paths now; each must lie inside a path of a plan of the
    /// repository (the API backs up nothing the config does not already name).
    #[schema(value_type = Vec<String>)]
    pub paths: Vec<PathBuf>,
    pub repository: Option<String>,
    pub tags: Vec<String>,
}

/// Back up (operator): `202` and the job.
#[utoipa::path(post, path = "/api/backup/create", tag = "backup", request_body = CreateBackup,
    security(("bearer" = [])),
    responses((status = 202, body = JobView), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    J(b): J<CreateBackup>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    caller.require(Role::Operator)?;
    if let Some(plan) = &b.plan {
        if !b.paths.is_empty() || b.repository.is_some() {
            return Err(Problem::invalid(
                "give a plan, or paths (and a repository), not both",
            ));
        }
        return Ok((
            StatusCode::ACCEPTED,
            Json(svc.run_plan(plan, crate::ops::run::Task::Backup, &caller.name)?),
        ));
    }
    if b.paths.is_empty() {
        return Err(Problem::invalid("give a plan, or paths to back up"));
    }
    let name = svc.repository_name(b.repository.as_deref())?;
    let roots: Vec<PathBuf> = svc
        .config
        .plans
        .values()
        .filter(|p| p.repository == name)
        .flat_map(|p| p.paths.iter().cloned())
        .collect();
    for p in &b.paths {
        if !p.is_absolute() || !roots.iter().any(|r| p.starts_with(r)) {
            return Err(Problem::forbidden(format!(
                "{}: not inside a path of a plan of repository {name:?}",
                p.display()
            )));
        }
    }
    let req = snapshot::SnapshotRequest {
        paths: b.paths,
        tags: b.tags,
        ..Default::default()
    };
    let cmd = vec!["POST /api/backup/create".into(), json(&req).to_string()];
    let job = svc.submit("snapshot", name, &caller.name, cmd, move |repo, ctx| {
        Outcome::of(snapshot::run(repo, &req, ctx), |s| {
            !s.summary.skipped.is_empty()
        })
    })?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// One entry of a snapshot's top directory.
#[derive(Serialize, ToSchema)]
pub struct TopEntry {
    pub name: String,
    /// file, dir, symlink, …
    pub kind: String,
    pub size: u64,
}

/// A snapshot with its top-level entries.
#[derive(Serialize, ToSchema)]
pub struct SnapshotDetail {
    pub snapshot: serde_json::Value,
    pub entries: Vec<TopEntry>,
}

/// A snapshot, its summary and its top-level listing (viewer).
#[utoipa::path(get, path = "/api/backup/{id}", tag = "backup",
    params(("id" = String, Path, description = "snapshot id, unique prefix, or latest"), RepoQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SnapshotDetail), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<RepoQuery>,
) -> ApiResult<Json<SnapshotDetail>> {
    caller.require(Role::Viewer)?;
    blocking(move || {
        let (_, repo) = svc.repository(q.repository.as_deref())?;
        let snap = crate::ops::select::snapshot(&repo, &SnapshotRef::id(id), &[])?;
        let tree = repo.load_tree(&snap.tree)?;
        let entries = tree
            .nodes
            .iter()
            .map(|n| TopEntry {
                name: n.display_name(),
                kind: json(&n.kind()).as_str().unwrap_or("").to_string(),
                size: n.size,
            })
            .collect();
        Ok(Json(SnapshotDetail {
            snapshot: json(&snap),
            entries,
        }))
    })
    .await
}

/// Verify a snapshot's data (operator): every blob read back and re-hashed, as a job.
#[utoipa::path(post, path = "/api/backup/{id}/verify", tag = "backup",
    params(("id" = String, Path, description = "snapshot id, unique prefix, or latest"), RepoQuery),
    security(("bearer" = [])),
    responses((status = 202, body = JobView), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<RepoQuery>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    caller.require(Role::Operator)?;
    let name = svc.repository_name(q.repository.as_deref())?;
    let req = verify::VerifyRequest {
        snapshot: SnapshotRef::id(id.clone()),
    };
    let cmd = vec![format!("POST /api/backup/{id}/verify")];
    let job = svc.submit("verify", name, &caller.name, cmd, move |repo, ctx| {
        let mut out = Outcome::of(verify::run(repo, &req, ctx), |_| false);
        let damaged = out.report["damaged"].as_array().map_or(0, Vec::len);
        if damaged > 0 {
            out.state = JobState::Failed;
            out.error = Some(format!("{damaged} blob(s) could not be read back intact"));
        }
        out
    })?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Forget a snapshot (admin), as a job; `prune=true` also frees its space.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ForgetQuery {
    pub repository: Option<String>,
    /// Prune afterwards.
    #[serde(default)]
    pub prune: bool,
}

/// Forget a snapshot (admin): `202` and the job.
#[utoipa::path(delete, path = "/api/backup/{id}", tag = "backup",
    params(("id" = String, Path, description = "snapshot id or unique prefix"), ForgetQuery),
    security(("bearer" = [])),
    responses((status = 202, body = JobView), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn forget(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<ForgetQuery>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    caller.require(Role::Admin)?;
    let name = svc.repository_name(q.repository.as_deref())?;
    if id == "latest" {
        return Err(Problem::invalid(
            "forget names a snapshot by id, not latest",
        ));
    }
    let req = forget::ForgetRequest {
        ids: vec![id.clone()],
        prune: q.prune.then(crate::ops::prune::PruneRequest::default),
        ..Default::default()
    };
    let cmd = vec![format!("DELETE /api/backup/{id}")];
    let job = svc.submit("forget", name, &caller.name, cmd, move |repo, ctx| {
        Outcome::of(forget::run(repo, &req, ctx), |_| false)
    })?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Storage statistics (viewer): size, snapshots, dedup and compression ratios.
#[utoipa::path(get, path = "/api/backup/storage", tag = "backup", params(RepoQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn storage(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Q(q): Q<RepoQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Viewer)?;
    blocking(move || {
        let (name, repo) = svc.repository(q.repository.as_deref())?;
        let s = stats::run(&repo, &stats::StatsRequest::default(), &Ctx::default())?;
        svc.keep_stats(&name, &s);
        Ok(Json(json(&s)))
    })
    .await
}
