//! `/api/audit`: the service's audit log, newest first (admin).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{blocking, Q};
use crate::serve::audit::AuditEntry;
use crate::serve::auth::Caller;
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::tokens::Role;
use crate::serve::Service;

/// Which entries.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many (default 100, at most 10000).
    pub limit: Option<usize>,
    /// Only calls made with this token.
    pub token: Option<String>,
}

/// Every HTTP call the service answered, newest first (admin).
#[utoipa::path(get, path = "/api/audit", tag = "service", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = [AuditEntry]), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Q(q): Q<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(Problem::invalid("limit must be between 1 and 10000"));
    }
    blocking(move || Ok(Json(svc.audit.tail(limit, q.token.as_deref())?))).await
}
