//! The dashboard's pages, server-rendered (no script, nothing fetched from elsewhere):
//! sign in with an API token (`/login`: the token becomes a session cookie, see
//! `session.rs`), the overview of plans and running jobs (`/`), sign out. Every form that
//! changes something carries the session's CSRF token; viewers get no buttons they could
//! not use. The pages only read the service and its plan state, and queue jobs through
//! the same calls as the API.

mod page;
pub mod session;

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::auth::{note, session_of, Caller};
use super::tokens::Role;
use super::Service;

/// The dashboard's routes.
pub fn router() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/ui/plans/{name}/run", post(run_plan))
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
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
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

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The caller of a form post: its session, once the form's CSRF field matches (and the
/// access and audit logs are told who it is).
async fn form_caller(svc: &Service, req: Request) -> Result<(Caller, Parts), Box<Response>> {
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts.clone(), body);
    let Ok(Form(f)) = Form::<CsrfForm>::from_request(req, &()).await else {
        let body = page::message("Refused", "The form is incomplete.");
        return Err(Box::new(html(StatusCode::BAD_REQUEST, body)));
    };
    let (caller, s) = session_of(&parts, svc).map_err(|_| Box::new(to_login()))?;
    if !session::same(&f.csrf, &s.csrf) {
        let body = page::message(
            "Refused",
            "This form is out of date or was not sent by this dashboard. Go back, reload and try again.",
        );
        return Err(Box::new(html(StatusCode::FORBIDDEN, body)));
    }
    note(&parts, &caller);
    Ok((caller, parts))
}

async fn logout(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let parts = match form_caller(&svc, req).await {
        Ok((_, parts)) => parts,
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

async fn overview(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let Ok((caller, s)) = session_of(&parts, &svc) else {
        return to_login();
    };
    note(&parts, &caller);
    let plans = page::plan_rows(&svc);
    let jobs = svc.jobs.list();
    html(
        StatusCode::OK,
        page::overview(&caller, &s.csrf, &plans, &jobs),
    )
}

async fn run_plan(
    State(svc): State<Arc<Service>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let caller = match form_caller(&svc, req).await {
        Ok((c, _)) => c,
        Err(r) => return *r,
    };
    if caller.role < Role::Operator {
        let body = page::message("Not allowed", "Running a plan needs an operator's token.");
        return html(StatusCode::FORBIDDEN, body);
    }
    match svc.run_plan(&name, crate::ops::run::Task::Backup, &caller.name) {
        Ok(_) => Redirect::to("/").into_response(),
        Err(p) => html(
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::CONFLICT),
            page::message("Not started", &p.detail),
        ),
    }
}
