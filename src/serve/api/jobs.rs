//! `/api/jobs/*`: every job this service has (running, queued, and the last finished
//! ones), one job, cancel, and its progress as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;

use crate::serve::auth::Caller;
use crate::serve::jobs::JobView;
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::tokens::Role;
use crate::serve::Service;

/// Jobs, newest first (viewer).
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", security(("bearer" = [])),
    responses((status = 200, body = [JobView]), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(svc): State<Arc<Service>>,
    caller: Caller,
) -> ApiResult<Json<Vec<JobView>>> {
    caller.require(Role::Viewer)?;
    Ok(Json(svc.jobs.list()))
}

fn job(svc: &Service, id: &str) -> ApiResult<JobView> {
    svc.jobs.get(id).ok_or_else(|| {
        Problem::not_found(format!(
            "no job {id:?} in this service (finished jobs of earlier runs: /api/recovery/status/{{id}})"
        ))
    })
}

/// A job (viewer).
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    caller.require(Role::Viewer)?;
    Ok(Json(job(&svc, &id)?))
}

/// Cancel a queued or running job (operator); it commits nothing half done.
#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id")),
    responses((status = 202, body = JobView), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(axum::http::StatusCode, Json<JobView>)> {
    caller.require(Role::Operator)?;
    match svc.jobs.cancel(&id) {
        None => Err(job(&svc, &id)
            .err()
            .unwrap_or_else(|| Problem::not_found("no such job"))),
        Some(false) => Err(Problem::conflict(format!("job {id} has already ended"))),
        Some(true) => {
            tracing::info!(job = %id, by = %caller.name, "cancel requested");
            Ok((axum::http::StatusCode::ACCEPTED, Json(job(&svc, &id)?)))
        }
    }
}

/// A job's progress as server-sent events (viewer): `progress` events with the job
/// while it runs (when it changed, at most twice a second), then one `done` event.
#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "text/event-stream of `progress` and `done` events", content_type = "text/event-stream", body = String),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(Role::Viewer)?;
    job(&svc, &id)?;
    let stream = futures_util::stream::unfold(
        (svc, id, String::new(), false),
        |(svc, id, last, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let v = svc.jobs.get(&id)?;
                let body = serde_json::to_string(&v).unwrap_or_default();
                if v.state.done() {
                    let ev = Event::default().event("done").data(body);
                    return Some((Ok(ev), (svc, id, String::new(), true)));
                }
                if body != last {
                    let ev = Event::default().event("progress").data(body.clone());
                    return Some((Ok(ev), (svc, id, body, false)));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
