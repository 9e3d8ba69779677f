//! `/api/recovery/*`: compare live data with a snapshot, preview a restore, restore (files
//! into a configured restore root, or collections into a plan's MongoDB server, at any
//! moment), a job's or operation's status, and the operation history.
//!
//! API callers name places only through the config: file restores and previews go below
//! `[service] restore-roots`, scans look at a plan's paths or a restore root, and MongoDB
//! work uses a plan's connection string. Nobody can make the service write, or read,
//! anywhere else on the host.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{blocking, json, J, Q};
use crate::ops::context::Ctx;
use crate::ops::restore::Conflict;
use crate::ops::restore::{FilesTarget, RestoreInto, RestoreRequest};
use crate::ops::select::SnapshotRef;
use crate::ops::{history, restore, scan};
use crate::serve::auth::Caller;
use crate::serve::jobs::{JobState, JobView, Outcome};
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::tokens::Role;
use crate::serve::Service;

/// `path`, made of normal components only, inside one of `roots` (compared after
/// resolving symbolic links in the part of it that exists).
fn inside(path: &FsPath, roots: &[PathBuf]) -> bool {
    use std::path::Component;
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return false;
    }
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n.to_os_string());
                existing = p.to_path_buf();
            }
            _ => return false,
        }
    }
    let Ok(mut real) = existing.canonicalize() else {
        return false;
    };
    real.extend(rest.iter().rev());
    roots.iter().any(|r| {
        let r = r.canonicalize().unwrap_or_else(|_| r.clone());
        real.starts_with(&r)
    })
}

fn restore_target(svc: &Service, target: &FsPath) -> ApiResult<PathBuf> {
    let roots = &svc.config.service.restore_roots;
    if roots.is_empty() {
        return Err(Problem::forbidden(
            "file restores over the API need [service] restore-roots in the config file",
        ));
    }
    if !inside(target, roots) {
        return Err(Problem::forbidden(format!(
            "{}: not inside a restore root ({})",
            target.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(target.to_path_buf())
}

fn snapshot_ref(snapshot: Option<String>, at: Option<&str>) -> ApiResult<SnapshotRef> {
    let mut r = SnapshotRef::id(snapshot.unwrap_or_else(|| "latest".into()));
    if let Some(at) = at {
        let t = crate::timespec::parse_time(at, chrono::Utc::now())
            .map_err(|e| Problem::invalid(format!("at {at:?}: {e}")))?;
        r.at = Some(t);
        if r.id.as_deref() == Some("latest") {
            r.id = None;
        }
    }
    Ok(r)
}

/// The includes of a restore: `include` as text and `include_hex` as exact bytes.
fn includes(b: &RestoreBody) -> ApiResult<Vec<crate::tree::path::SnapPath>> {
    let mut out: Vec<crate::tree::path::SnapPath> =
        csv(&b.include).into_iter().map(Into::into).collect();
    for h in csv(&b.include_hex) {
        let bytes = hex::decode(&h)
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                Problem::invalid(format!(
                    "include_hex {h:?}: want the path's bytes as hex digits (\"2f64e9\" for /d\\xe9)"
                ))
            })?;
        out.push(crate::tree::path::SnapPath::from_bytes(bytes));
    }
    Ok(out)
}

fn csv(s: &Option<String>) -> Vec<String> {
    s.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The MongoDB connection string of plan `name`.
#[cfg(feature = "mongo")]
fn plan_uri(svc: &Service, name: &str) -> ApiResult<crate::mongo::uri::ConnectionString> {
    let plan = svc
        .config
        .plan(name)
        .map_err(|e| Problem::not_found(e.to_string()))?;
    let m = plan
        .mongodb
        .as_ref()
        .ok_or_else(|| Problem::invalid(format!("plan {name:?} has no MongoDB source")))?;
    Ok(m.uri.read()?)
}

/// What to compare.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScanQuery {
    pub repository: Option<String>,
    /// Snapshot id or prefix (default: the latest that holds the data).
    pub snapshot: Option<String>,
    /// A live path inside a plan's paths or a restore root.
    pub path: Option<String>,
    /// Also hash files whose size and mtime are unchanged.
    #[serde(default)]
    pub read: bool,
    /// Or: the MongoDB server of this plan.
    pub mongodb_plan: Option<String>,
    /// With `mongodb_plan`: only namespaces matching these globs (comma-separated).
    pub namespaces: Option<String>,
}

/// Live files or collections against a snapshot (viewer): missing, new, modified.
#[utoipa::path(get, path = "/api/recovery/scan", tag = "recovery", params(ScanQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn scan(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Q(q): Q<ScanQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Viewer)?;
    blocking(move || {
        let name = svc.repository_name(q.repository.as_deref())?;
        let of = match (&q.path, &q.mongodb_plan) {
            (Some(p), None) => {
                let path = PathBuf::from(p);
                let mut roots: Vec<PathBuf> = svc
                    .config
                    .plans
                    .values()
                    .filter(|pl| pl.repository == name)
                    .flat_map(|pl| pl.paths.iter().cloned())
                    .collect();
                roots.extend(svc.config.service.restore_roots.iter().cloned());
                if !inside(&path, &roots) {
                    return Err(Problem::forbidden(format!(
                        "{p}: not inside a plan's paths or a restore root"
                    )));
                }
                scan::ScanOf::Files { path, read: q.read }
            }
            #[cfg(feature = "mongo")]
            (None, Some(plan)) => scan::ScanOf::Mongodb {
                uri: plan_uri(&svc, plan)?,
                namespaces: csv(&q.namespaces),
            },
            _ => return Err(Problem::invalid("give path or mongodb_plan")),
        };
        let repo = svc.repos.fresh(&name)?;
        let req = scan::ScanRequest {
            snapshot: q.snapshot.map(SnapshotRef::id),
            of,
        };
        Ok(Json(json(&scan::run(&repo, &req, &Ctx::default())?)))
    })
    .await
}

/// A restore: what, when, and into where.
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct RestoreBody {
    pub repository: Option<String>,
    /// Snapshot id or prefix (default: the latest).
    pub snapshot: Option<String>,
    /// The state at this moment ("2026-12-01 14:05:00", "2h"): for MongoDB the oplog is
    /// replayed up to it; for files, the newest snapshot before it.
    pub at: Option<String>,
    /// Snapshot paths or globs to restore (comma-separated in a query); empty: all.
    pub include: Option<String>,
    /// More of them by their exact bytes, in hex (comma-separated): for names that are not
    /// UTF-8, which text cannot carry (listings give them as `path_hex`).
    pub include_hex: Option<String>,
    /// Files: a directory inside a restore root.
    #[schema(value_type = Option<String>)]
    #[param(value_type = Option<String>)]
    pub target: Option<PathBuf>,
    /// Files: leave out entries matching these globs (comma-separated).
    pub exclude: Option<String>,
    /// Files: skip, overwrite, if-newer, if-changed or rename.
    #[schema(value_type = Option<String>)]
    #[param(value_type = Option<String>)]
    pub conflict: Option<Conflict>,
    /// Files: remove entries the snapshot does not have.
    pub delete: bool,
    /// MongoDB: restore into the server of this plan.
    pub mongodb_plan: Option<String>,
    /// MongoDB: only namespaces matching these globs (comma-separated).
    pub namespaces: Option<String>,
    /// MongoDB: rename rules `FROM:TO` ("app.*:restored.*"), comma-separated.
    pub rename: Option<String>,
    /// MongoDB, with rename rules: also write collections no rule covers back into the
    /// server the snapshot was taken from.
    pub in_place: bool,
    /// MongoDB: what to do with existing collections: skip, overwrite, drop or fail.
    pub mongodb_conflict: Option<String>,
}

pub fn restore_request(svc: &Service, b: &RestoreBody, dry_run: bool) -> ApiResult<RestoreRequest> {
    let into = match (&b.target, &b.mongodb_plan) {
        (Some(t), None) => RestoreInto::Files(FilesTarget {
            target: restore_target(svc, t)?,
            excludes: csv(&b.exclude),
            conflict: b.conflict.unwrap_or_default(),
            verify_existing: false,
            delete: b.delete,
        }),
        #[cfg(feature = "mongo")]
        (None, Some(plan)) => {
            let conflict = match b.mongodb_conflict.as_deref().unwrap_or("fail") {
                "skip" => crate::mongo::restore::MongoConflict::Skip,
                "overwrite" => crate::mongo::restore::MongoConflict::Overwrite,
                "drop" => crate::mongo::restore::MongoConflict::Drop,
                "fail" => crate::mongo::restore::MongoConflict::Fail,
                other => {
                    return Err(Problem::invalid(format!(
                        "mongodb_conflict {other:?}: want skip, overwrite, drop or fail"
                    )))
                }
            };
            RestoreInto::Mongodb(crate::mongo::restore::MongoTarget {
                uri: plan_uri(svc, plan)?,
                namespaces: csv(&b.namespaces),
                renames: crate::mongo::ns::Renames::parse(&csv(&b.rename), &[], &[])?,
                conflict,
                in_place: b.in_place,
            })
        }
        _ => {
            return Err(Problem::invalid(
                "give target (files) or mongodb_plan (MongoDB)",
            ))
        }
    };
    Ok(RestoreRequest {
        snapshot: snapshot_ref(b.snapshot.clone(), b.at.as_deref())?,
        ordinal: None,
        include: includes(b)?,
        dry_run,
        into,
    })
}

/// What a restore would do, per file or collection, with bytes (viewer).
#[utoipa::path(get, path = "/api/recovery/preview", tag = "recovery", params(RestoreBody),
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn preview(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Q(b): Q<RestoreBody>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Viewer)?;
    blocking(move || {
        let req = restore_request(&svc, &b, true)?;
        let name = svc.repository_name(b.repository.as_deref())?;
        let repo = svc.repos.fresh(&name)?;
        Ok(Json(json(&restore::run(&repo, &req, &Ctx::default())?)))
    })
    .await
}

/// Restore (operator): `202` and the job.
#[utoipa::path(post, path = "/api/recovery/restore", tag = "recovery", request_body = RestoreBody,
    security(("bearer" = [])),
    responses((status = 202, body = JobView), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn restore(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    J(b): J<RestoreBody>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    caller.require(Role::Operator)?;
    let job = submit_restore(&svc, &caller.name, &b, "POST /api/recovery/restore")?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Queues the restore `b` describes as a job of `by` (the API and the dashboard).
pub fn submit_restore(
    svc: &Arc<Service>,
    by: &str,
    b: &RestoreBody,
    route: &str,
) -> ApiResult<JobView> {
    let req = restore_request(svc, b, false)?;
    let name = svc.repository_name(b.repository.as_deref())?;
    let cmd = vec![route.to_string(), json(&req).to_string()];
    svc.submit(
        "restore",
        name,
        by,
        cmd,
        move |repo, ctx| match restore::run(repo, &req, ctx) {
            Ok(o) => {
                let mut out = Outcome::of(Ok(&o), |_| false);
                if let Some(why) = o.failure() {
                    out.state = JobState::Failed;
                    out.error = Some(why);
                }
                out
            }
            Err(e) => Outcome::of::<()>(Err(e), |_| false),
        },
    )
}

/// A job, or an operation from the log (viewer).
#[utoipa::path(get, path = "/api/recovery/status/{id}", tag = "recovery",
    params(("id" = String, Path, description = "job or operation id (or unique prefix)"), super::backup::RepoQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn status(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    Q(q): Q<super::backup::RepoQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Viewer)?;
    if let Some(j) = svc.jobs.get(&id) {
        return Ok(Json(json(&j)));
    }
    blocking(move || {
        let (_, repo) = svc.repository(q.repository.as_deref())?;
        Ok(Json(json(&history::status(&repo, &id)?)))
    })
    .await
}

/// Which operations.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub repository: Option<String>,
    /// snapshot, restore, check, forget, prune, copy, run, verify, … (default: all).
    pub kind: Option<String>,
    pub plan: Option<String>,
    /// Only failed, skipped or cancelled ones.
    #[serde(default)]
    pub failed: bool,
    /// Only those started since ("7d", "2026-11-28").
    pub since: Option<String>,
}

/// The operation log, every host's, oldest first (viewer).
#[utoipa::path(get, path = "/api/recovery/history", tag = "recovery", params(HistoryQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [Object]), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn history(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Q(q): Q<HistoryQuery>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    caller.require(Role::Viewer)?;
    let since = q
        .since
        .as_deref()
        .map(|s| {
            crate::timespec::parse_time(s, chrono::Utc::now())
                .map_err(|e| Problem::invalid(format!("since {s:?}: {e}")))
        })
        .transpose()?;
    blocking(move || {
        let (_, repo) = svc.repository(q.repository.as_deref())?;
        let req = history::HistoryRequest {
            plan: q.plan,
            kind: q.kind,
            failed: q.failed,
            since,
        };
        let r = history::run(&repo, &req)?;
        Ok(Json(r.records.iter().map(json).collect()))
    })
    .await
}
