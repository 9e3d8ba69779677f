//! Errors as RFC 9457 problem documents: a status, a stable `code` callers can act on, a
//! title and a detail. Never a stack trace; library errors never hold secrets.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// An API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` says what it was.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// A stable code: unauthorized, forbidden, not_found, invalid, conflict, locked,
    /// too_many_requests, unavailable, damaged, storage, source, cancelled, internal.
    pub code: &'static str,
    pub title: String,
    pub detail: String,
}

impl Problem {
    /// A problem with `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            status: status.as_u16(),
            code,
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            detail: detail.into(),
        }
    }

    /// 400.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 503.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        let (status, code) = match (&e, e.kind()) {
            (Error::Selection(_), _) => (StatusCode::NOT_FOUND, "not_found"),
            (Error::Io { source, .. }, _) if source.kind() == std::io::ErrorKind::NotFound => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            (Error::Io { source, .. }, _)
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            (_, ErrorKind::InvalidInput | ErrorKind::Refused) => {
                (StatusCode::BAD_REQUEST, "invalid")
            }
            (_, ErrorKind::Locked | ErrorKind::Busy) => (StatusCode::CONFLICT, "locked"),
            (_, ErrorKind::NoRepository | ErrorKind::WrongPassword) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            (_, ErrorKind::StorageTransient) => (StatusCode::SERVICE_UNAVAILABLE, "storage"),
            (_, ErrorKind::StoragePermanent) => (StatusCode::BAD_GATEWAY, "storage"),
            (_, ErrorKind::Source) => (StatusCode::BAD_GATEWAY, "source"),
            (_, ErrorKind::Damaged) => (StatusCode::INTERNAL_SERVER_ERROR, "damaged"),
            (_, ErrorKind::Cancelled) => (StatusCode::CONFLICT, "cancelled"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Problem::new(status, code, e.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/problem+json; charset=utf-8",
            )],
            body,
        )
            .into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = std::result::Result<T, Problem>;
