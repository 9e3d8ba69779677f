//! Who is calling: a bearer token from the token file, with its role. Failed attempts are
//! counted per client address; past [`MAX_FAILURES`] in a minute that address gets `429`
//! until the minute is over, so tokens cannot be guessed at speed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;

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
    fn blocked(&self, ip: IpAddr) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, (_, since)| since.elapsed() < WINDOW);
        m.get(&ip).is_some_and(|(n, _)| *n >= MAX_FAILURES)
    }

    fn failed(&self, ip: IpAddr) {
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
            return Err(unauthorized(
                "send a token as `Authorization: Bearer TOKEN` (create one with `repo token create`)",
            ));
        };
        match svc.tokens.verify(token) {
            Ok(Some(t)) => {
                let caller = Caller {
                    name: t.name,
                    role: t.role,
                };
                if let Some(who) = parts.extensions.get::<super::api::Who>() {
                    *who.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(caller.clone());
                }
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
