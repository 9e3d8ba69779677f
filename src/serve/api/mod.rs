//! The HTTP API. Modules mirror the URL tree: `backup` = `/api/backup/*`, `recovery` =
//! `/api/recovery/*`, `jobs` = `/api/jobs/*`, `plans` = `/api/plans/*`, `tokens` =
//! `/api/tokens/*`; this file holds the router, `/healthz`, `/metrics`, the OpenAPI
//! document and the extractors that turn bad input into problem documents.

pub mod audit;
pub mod backup;
pub mod jobs;
pub mod plans;
pub mod recovery;
pub mod tokens;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::Caller;
use super::problem::{ApiResult, Problem};
use super::tokens::Role;
use super::Service;

/// Request bodies larger than this are refused (`413`).
const MAX_BODY: usize = 64 << 10;

/// Query parameters; bad ones are a `400` problem.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> ApiResult<Self> {
        axum::extract::Query::<T>::from_request_parts(parts, s)
            .await
            .map(|q| Q(q.0))
            .map_err(|e| Problem::invalid(e.body_text()))
    }
}

/// A JSON body; a bad one is a `400` problem (`413` too large, `415` not JSON).
pub struct J<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for J<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, s: &S) -> ApiResult<Self> {
        Json::<T>::from_request(req, s)
            .await
            .map(|j| J(j.0))
            .map_err(|e| match e.status() {
                s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => {
                    Problem::new(s, "invalid", e.body_text())
                }
                _ => Problem::invalid(e.body_text()),
            })
    }
}

/// Runs repository work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|_| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (see the service log)",
        )
    })?
}

/// JSON of anything serializable (reports as the CLI's `--json` prints them).
pub fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Every route.
pub fn router(svc: Arc<Service>) -> Router {
    let api = Router::new()
        .route("/api/backup/list", get(backup::list))
        .route("/api/backup/create", post(backup::create))
        .route("/api/backup/storage", get(backup::storage))
        .route("/api/backup/{id}", get(backup::show).delete(backup::forget))
        .route("/api/backup/{id}/verify", post(backup::verify))
        .route("/api/recovery/scan", get(recovery::scan))
        .route("/api/recovery/preview", get(recovery::preview))
        .route("/api/recovery/restore", post(recovery::restore))
        .route("/api/recovery/status/{id}", get(recovery::status))
        .route("/api/recovery/history", get(recovery::history))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::show))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/events", get(jobs::events))
        .route("/api/plans", get(plans::list))
        .route("/api/plans/{name}/run", post(plans::run))
        .route("/api/tokens", get(tokens::list).post(tokens::create))
        .route("/api/tokens/{name}", axum::routing::delete(tokens::revoke))
        .route("/api/audit", get(audit::list))
        .route("/api/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics));
    api.merge(super::web::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(svc.clone(), count))
        .with_state(svc)
}

async fn not_found() -> Problem {
    Problem::not_found("no such endpoint (see /api/openapi.json)")
}

/// Who made a request, filled in by the [`Caller`] extractor for the access log.
#[derive(Clone, Default)]
pub struct Who(pub Arc<std::sync::Mutex<Option<Caller>>>);

/// Counts each request by route, method and status, logs it with the caller's token
/// name (never the token) and how long it took, and appends it to the audit log.
async fn count(State(svc): State<Arc<Service>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "-".to_string(), |c| c.0.ip().to_string());
    let who = Who::default();
    req.extensions_mut().insert(who.clone());
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    svc.metrics.http(&route, &method, status);
    let caller = who.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let by = caller.as_ref().map_or("-", |c| c.name.as_str());
    tracing::info!(%method, %route, status, token = %by, ms, "request");
    svc.audit.write(&super::audit::AuditEntry {
        time: chrono::Utc::now(),
        method,
        route,
        path,
        status,
        token: caller.as_ref().map(|c| c.name.clone()),
        role: caller.map(|c| c.role.as_str().to_string()),
        ip,
        ms,
    });
    res
}

/// The service's health.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `shutting-down`.
    pub status: String,
    pub version: String,
    pub started: chrono::DateTime<chrono::Utc>,
    pub jobs_queued: usize,
    pub jobs_running: usize,
}

/// Health (no token needed).
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, body = Health)))]
pub async fn healthz(State(svc): State<Arc<Service>>) -> Json<Health> {
    let (q, r) = svc.jobs.counts();
    Json(Health {
        status: if svc.jobs.closed() {
            "shutting-down"
        } else {
            "ok"
        }
        .into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started: svc.started,
        jobs_queued: q,
        jobs_running: r,
    })
}

/// Prometheus metrics (viewer).
#[utoipa::path(get, path = "/metrics", tag = "service", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", body = String, content_type = "application/openmetrics-text"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 429, body = Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(svc): State<Arc<Service>>, caller: Caller) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    let (q, r) = svc.jobs.counts();
    let body = svc.metrics.render(q, r, &svc.followers.views());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi::document())
}
