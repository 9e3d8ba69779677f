//! `/api/plans/*`: the configured plans with their schedules and last runs; run one now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

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
                active_job: jobs
                    .iter()
                    .find(|j| j.plan.as_deref() == Some(&p.name) && !j.state.done())
                    .map(|j| j.id.clone()),
                follow: follows.iter().find(|f| f.plan == p.name).cloned(),
            }
        })
        .collect();
    Ok(Json(views))
}

/// Run a plan now (operator): `202` and the job; `409` while it is already running.
#[utoipa::path(post, path = "/api/plans/{name}/run", tag = "plans", security(("bearer" = [])),
    params(("name" = String, Path, description = "plan name")),
    responses((status = 202, body = JobView), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn run(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    caller.require(Role::Operator)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(svc.run_plan(&name, &caller.name)?),
    ))
}
