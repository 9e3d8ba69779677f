//! Browser sessions: signing in with an API token gives a random session id in an
//! `HttpOnly`, `SameSite=Strict` cookie (also `Secure` over TLS), valid for
//! [`SESSION_TTL`]. The session remembers the token's *name*, not the token: every
//! request looks the name up in the token file again, so revoking a token (or changing
//! its role) applies to its sessions at once. Each session has a CSRF token that every
//! state-changing request made with the cookie must carry (`X-CSRF-Token` header, or the
//! `csrf` field of a form).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The cookie's name.
pub const COOKIE: &str = "repo_session";

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The name of the token it signed in with.
    pub token: String,
    /// What state-changing requests must echo.
    pub csrf: String,
    expires: Instant,
}

/// Every live session, by id.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub use crate::serve::tokens::same;

impl Sessions {
    /// A new session for token `name`; returns its id.
    pub fn create(&self, name: &str) -> String {
        let id = random_hex();
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, s| s.expires > Instant::now());
        m.insert(
            id.clone(),
            Session {
                token: name.to_string(),
                csrf: random_hex(),
                expires: Instant::now() + SESSION_TTL,
            },
        );
        id
    }

    /// The live session `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// Ends session `id`.
    pub fn end(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// The session id the request's cookie carries.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that stores session `id` (or clears it, with `None`).
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_cookies_and_csrf() {
        let s = Sessions::default();
        let id = s.create("dash");
        let got = s.get(&id).unwrap();
        assert_eq!(got.token, "dash");
        assert_eq!(got.csrf.len(), 64);
        assert_ne!(got.csrf, id);
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            format!("a=b; {COOKIE}={id}; c=d").parse().unwrap(),
        );
        assert_eq!(cookie(&h).as_deref(), Some(id.as_str()));
        h.insert(
            axum::http::header::COOKIE,
            "repo_session=../x".parse().unwrap(),
        );
        assert_eq!(cookie(&h), None, "only well-formed ids");
        s.end(&id);
        assert!(s.get(&id).is_none());
        let c = set_cookie(Some("ab"), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("ab", "abc"));
    }
}
