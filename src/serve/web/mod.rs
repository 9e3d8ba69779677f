//! The dashboard, server-rendered HTML with no script and nothing fetched from elsewhere:
//! sign in with an API token (`/login`: the token becomes a session cookie, see
//! `session.rs`), the overview of plans and jobs (`/`), snapshots with a tree browser,
//! downloads and diffs (`/snapshots`), restores through a preview (`/restore`), a job's
//! live page (`/jobs/{id}`), the operation log (`/history`) and storage (`/storage`).
//! Every form that changes something carries the session's CSRF token; viewers get no
//! buttons they could not use. Pages call the same `ops` verbs and service calls as the
//! API; nothing here writes to a repository itself.

mod chart;
mod download;
mod history;
mod jobs;
mod overview;
mod page;
mod restore;
pub mod session;
mod snapshots;
mod storage;
mod timeline;

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::auth::{note, session_of, Caller};
use super::problem::{ApiResult, Problem};
use super::tokens::Role;
use super::Service;
use page::Frame;

/// The dashboard's routes.
pub fn router() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(overview_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/ui/plans/{name}/run", post(run_plan))
        .route("/snapshots", get(snapshots::list))
        .route("/snapshots/{id}", get(snapshots::show))
        .route("/snapshots/{id}/file", get(download::file))
        .route("/snapshots/{id}/tar", get(download::tar))
        .route("/snapshots/{id}/diff", get(snapshots::diff))
        .route("/restore", get(restore::form))
        .route("/restore/preview", get(restore::preview))
        .route("/ui/restore", post(restore::run))
        .route("/jobs/{id}", get(jobs::show))
        .route("/ui/jobs/{id}/cancel", post(jobs::cancel))
        .route("/history", get(history::list))
        .route("/history/{id}", get(history::show))
        .route("/storage", get(storage::show))
}

/// An HTML page with the headers every page gets: no caching, no framing, no referrer,
/// and a policy that allows nothing but this page's own styles and forms to itself.
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    for (k, v) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// A signed-in browser looking at a page (any role). Without a live session the request
/// is sent to the sign-in page.
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
}

impl Viewer {
    fn frame(&self) -> Frame<'_> {
        Frame {
            caller: &self.caller,
            csrf: &self.csrf,
        }
    }

    /// The page for a failed request: its status and what went wrong, inside the frame.
    fn fail(&self, p: &Problem) -> Response {
        let body = format!(
            "<h1>Not done</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
            page::esc(&p.detail)
        );
        html(
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            page::layout(&self.frame(), "Not done", "", &body),
        )
    }

    /// Renders `f`'s page, built off the async runtime (it reads the repository).
    async fn page(self, f: impl FnOnce(&Frame) -> ApiResult<String> + Send + 'static) -> Response {
        let v = Arc::new(self);
        let v2 = v.clone();
        let built = tokio::task::spawn_blocking(move || f(&v2.frame())).await;
        match built {
            Ok(Ok(body)) => html(StatusCode::OK, body),
            Ok(Err(p)) => v.fail(&p),
            Err(_) => v.fail(&Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error (see the service log)",
            )),
        }
    }
}

impl FromRequestParts<Arc<Service>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Service>) -> Result<Self, Response> {
        let Ok((caller, s)) = session_of(parts, svc) else {
            return Err(to_login());
        };
        note(parts, &caller);
        Ok(Viewer {
            caller,
            csrf: s.csrf,
        })
    }
}

async fn login_page(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    if session_of(&parts, &svc).is_ok() {
        return Redirect::to("/").into_response();
    }
    html(StatusCode::OK, page::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let ip = addr.ip();
    if svc.limiter.blocked(ip) {
        let msg = "Too many failed sign-ins from this address; try again in a minute.";
        return html(StatusCode::TOO_MANY_REQUESTS, page::login(Some(msg)));
    }
    match svc.tokens.verify(f.token.trim()) {
        Ok(Some(t)) => {
            let id = svc.sessions.create(&t.name);
            tracing::info!(token = %t.name, "signed in to the dashboard");
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) =
                HeaderValue::from_str(&session::set_cookie(Some(&id), svc.secure_cookies))
            {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(None) => {
            svc.limiter.failed(ip);
            tracing::warn!(%ip, "dashboard sign-in with an unknown token");
            html(
                StatusCode::UNAUTHORIZED,
                page::login(Some("Unknown or revoked token.")),
            )
        }
        Err(e) => {
            tracing::error!("reading the token file: {e}");
            let msg = "The token file cannot be read; see the service log.";
            html(StatusCode::SERVICE_UNAVAILABLE, page::login(Some(msg)))
        }
    }
}

/// The caller of a form post with the form's fields: its session, once the form's CSRF
/// field matches (and the access and audit logs are told who it is); with `role`, the
/// caller must have it.
async fn form_caller(
    svc: &Service,
    req: Request,
    role: Role,
) -> Result<(Caller, Parts, axum::body::Bytes), Box<Response>> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 10).await else {
        let body = page::message("Refused", "The form is too large.");
        return Err(Box::new(html(StatusCode::PAYLOAD_TOO_LARGE, body)));
    };
    let Ok(f) = serde_urlencoded::from_bytes::<CsrfFields>(&bytes) else {
        let body = page::message("Refused", "The form is incomplete.");
        return Err(Box::new(html(StatusCode::BAD_REQUEST, body)));
    };
    let (caller, s) = session_of(&parts, svc).map_err(|_| Box::new(to_login()))?;
    if !f.csrf.as_deref().is_some_and(|c| session::same(c, &s.csrf)) {
        if f.csrf.is_none() {
            let body = page::message("Refused", "The form is incomplete.");
            return Err(Box::new(html(StatusCode::BAD_REQUEST, body)));
        }
        let body = page::message(
            "Refused",
            "This form is out of date or was not sent by this dashboard. Go back, reload and try again.",
        );
        return Err(Box::new(html(StatusCode::FORBIDDEN, body)));
    }
    note(&parts, &caller);
    if caller.role < role {
        let body = page::message(
            "Not allowed",
            &format!("This needs an {} token.", role.as_str()),
        );
        return Err(Box::new(html(StatusCode::FORBIDDEN, body)));
    }
    Ok((caller, parts, bytes))
}

/// Only the CSRF field of a form (the others are read by the handler).
#[derive(Deserialize)]
struct CsrfFields {
    csrf: Option<String>,
}

async fn logout(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let parts = match form_caller(&svc, req, Role::Viewer).await {
        Ok((_, parts, _)) => parts,
        Err(r) => return *r,
    };
    if let Some(id) = session::cookie(&parts.headers) {
        svc.sessions.end(&id);
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(None, svc.secure_cookies)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn overview_page(State(svc): State<Arc<Service>>, v: Viewer) -> Response {
    v.page(move |f| {
        let plans = overview::plan_rows(&svc);
        let jobs = svc.jobs.list();
        Ok(overview::render(f, &plans, &jobs))
    })
    .await
}

async fn run_plan(
    State(svc): State<Arc<Service>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let caller = match form_caller(&svc, req, Role::Operator).await {
        Ok((c, _, _)) => c,
        Err(r) => return *r,
    };
    match svc.run_plan(&name, crate::ops::run::Task::Backup, &caller.name) {
        Ok(job) => Redirect::to(&format!("/jobs/{}", page::url(&job.id))).into_response(),
        Err(p) => html(
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::CONFLICT),
            page::message("Not started", &p.detail),
        ),
    }
}
