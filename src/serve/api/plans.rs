//! `/api/plans/*`: the configured plans with their schedules and last runs; run one now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Q;
use crate::ops::run::Task;
use crate::plan::Plan;

use crate::plan::state::PlanState;
use crate::serve::auth::Caller;
use crate::serve::follow::FollowView;
use crate::serve::jobs::JobView;
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::tokens::Role;
use crate::serve::Service;

/// A plan and how it has been doing on this host.
#[derive(Serialize, ToSchema)]
pub struct PlanView {
    pub name: String,
    pub repository: String,
    /// The plan as configured (no secrets: only where they come from).
    pub plan: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    /// A job of this plan queued or running now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_job: Option<String>,
    /// Its oplog follower, with `follow-oplog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<FollowView>,
    /// Its check and prune on schedules of their own, or run on request.
    pub maintenance: Vec<TaskView>,
}

/// A plan's check or prune.
#[derive(Serialize, ToSchema)]
pub struct TaskView {
    /// check or prune.
    pub task: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<DateTime<Utc>>,
    /// The last one on this host.
    pub last: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_job: Option<String>,
}

/// `?task=` of a run.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// backup (default), check, or prune (admin).
    pub task: Option<String>,
}

fn active(jobs: &[JobView], plan: &str, kind: &str) -> Option<String> {
    jobs.iter()
        .find(|j| j.plan.as_deref() == Some(plan) && j.kind == kind && !j.state.done())
        .map(|j| j.id.clone())
}

fn maintenance(p: &Plan, st: &PlanState, jobs: &[JobView]) -> Vec<TaskView> {
    [Task::Check, Task::Prune]
        .into_iter()
        .filter_map(|task| {
            let schedule = task.schedule(p);
            let last = st.last(task.as_str());
            if schedule.is_none() && last.is_none() {
                return None;
            }
            Some(TaskView {
                task: task.as_str().to_string(),
                schedule: schedule.map(|s| s.as_str().to_string()),
                next_run: schedule.and_then(|s| s.next_after(Utc::now())),
                last: super::json(&last),
                active_job: active(jobs, &p.name, task.record_kind()),
            })
        })
        .collect()
}

/// Plans (viewer).
#[utoipa::path(get, path = "/api/plans", tag = "plans", security(("bearer" = [])),
    responses((status = 200, body = [PlanView]), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(svc): State<Arc<Service>>,
    caller: Caller,
) -> ApiResult<Json<Vec<PlanView>>> {
    caller.require(Role::Viewer)?;
    let dir = svc.state_root.join("plans");
    let jobs = svc.jobs.list();
    let follows = svc.followers.views();
    let views = svc
        .config
        .plans
        .values()
        .map(|p| {
            let st = PlanState::load(&dir, &p.name);
            PlanView {
                name: p.name.clone(),
                repository: p.repository.clone(),
                plan: super::json(p),
                schedule: p.schedule.as_ref().map(|s| s.as_str().to_string()),
                next_run: p.schedule.as_ref().and_then(|s| s.next_after(Utc::now())),
                last_run: super::json(&st.last_run),
                last_success: st.last_success,
                active_job: active(&jobs, &p.name, Task::Backup.record_kind()),
                follow: follows.iter().find(|f| f.plan == p.name).cloned(),
                maintenance: maintenance(p, &st, &jobs),
            }
        })
        .collect();
    Ok(Json(views))
}

/// Run a plan now (operator; `?task=prune`: admin): `202` and the job; `409` while that
/// task of the plan is already queued or running.
#[utoipa::path(post, path = "/api/plans/{name}/run", tag = "plans", security(("bearer" = [])),
    params(("name" = String, Path, description = "plan name"), RunQuery),
    responses((status = 202, body = JobView), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn run(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
    Q(q): Q<RunQuery>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let task = match q.task.as_deref() {
        None => Task::Backup,
        Some(t) => Task::parse(t).map_err(|e| Problem::invalid(e.to_string()))?,
    };
    caller.require(if task == Task::Prune {
        Role::Admin
    } else {
        Role::Operator
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(svc.run_plan(&name, task, &caller.name)?),
    ))
}
