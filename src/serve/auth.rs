//! Who is calling: a bearer token from the token file, with its role. Failed attempts are
//! counted per client address; past [`MAX_FAILURES`] in a minute that address gets `429`
//! until the minute is over, so tokens cannot be guessed at speed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};

use super::problem::{ApiResult, Problem};
use super::tokens::Role;
use super::Service;

/// Failed attempts allowed per address per window.
const MAX_FAILURES: u32 = 20;
const WINDOW: Duration = Duration::from_secs(60);

/// Failed attempts by address.
#[derive(Default)]
pub struct Limiter(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl Limiter {
    pub(crate) fn blocked(&self, ip: IpAddr) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, (_, since)| since.elapsed() < WINDOW);
        m.get(&ip).is_some_and(|(n, _)| *n >= MAX_FAILURES)
    }

    pub(crate) fn failed(&self, ip: IpAddr) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(ip).or_insert((0, Instant::now()));
        e.0 += 1;
    }
}

/// The caller of a request: its token's name and role.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Fails with `403` unless the caller's role is at least `role`.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "token {:?} is a {}; this needs {}",
                self.name,
                self.role.as_str(),
                role.as_str()
            )))
        }
    }
}

impl FromRequestParts<Arc<Service>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Service>) -> ApiResult<Self> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        if svc.limiter.blocked(ip) {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many failed authentications from this address; try again in a minute",
            ));
        }
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let unauthorized = |detail: &str| {
            Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail.to_string())
        };
        let Some(token) = token else {
            let csrf = !matches!(parts.method, Method::GET | Method::HEAD);
            let caller = session_caller(parts, svc, csrf)?;
            note(parts, &caller);
            return Ok(caller);
        };
        match svc.tokens.verify(token) {
            Ok(Some(t)) => {
                let caller = Caller {
                    name: t.name,
                    role: t.role,
                };
                note(parts, &caller);
                Ok(caller)
            }
            Ok(None) => {
                svc.limiter.failed(ip);
                tracing::warn!(%ip, "rejected an unknown token");
                Err(unauthorized("unknown or revoked token"))
            }
            Err(e) => {
                tracing::error!("reading the token file: {e}");
                Err(Problem::unavailable("the token file cannot be read"))
            }
        }
    }
}

/// Tells the access and audit logs who called.
pub fn note(parts: &Parts, caller: &Caller) {
    if let Some(who) = parts.extensions.get::<super::api::Who>() {
        *who.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(caller.clone());
    }
}

/// The caller of a request made with a browser session's cookie; with `csrf`, the
/// request must carry the session's CSRF token in `X-CSRF-Token`.
pub fn session_caller(parts: &Parts, svc: &Service, csrf: bool) -> ApiResult<Caller> {
    let (caller, session) = session_of(parts, svc)?;
    if csrf {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        if !sent.is_some_and(|t| super::web::session::same(t, &session.csrf)) {
            return Err(Problem::forbidden(
                "a request that changes something, made with a session cookie, needs the session's X-CSRF-Token",
            ));
        }
    }
    Ok(caller)
}

/// The session the request's cookie names, and who it is now (its token may have been
/// revoked or given another role since it signed in).
pub fn session_of(
    parts: &Parts,
    svc: &Service,
) -> ApiResult<(Caller, super::web::session::Session)> {
    let unauthorized =
        |detail: &str| Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail.to_string());
    let Some(id) = super::web::session::cookie(&parts.headers) else {
        return Err(unauthorized(
            "send a token as `Authorization: Bearer TOKEN` (create one with `repo token create`), or sign in at /login",
        ));
    };
    let Some(session) = svc.sessions.get(&id) else {
        return Err(unauthorized(
            "the session has ended: sign in again at /login",
        ));
    };
    match svc.tokens.lookup(&session.token) {
        Ok(Some(t)) => Ok((
            Caller {
                name: t.name,
                role: t.role,
            },
            session,
        )),
        Ok(None) => {
            svc.sessions.end(&id);
            Err(unauthorized(
                "the token this session signed in with was revoked",
            ))
        }
        Err(e) => {
            tracing::error!("reading the token file: {e}");
            Err(Problem::unavailable("the token file cannot be read"))
        }
    }
}
