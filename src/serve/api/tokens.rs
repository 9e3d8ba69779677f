//! `/api/tokens/*`: list, create and revoke API tokens (admin). A created token is in the
//! response once and nowhere else.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{blocking, J};
use crate::serve::auth::Caller;
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::tokens::{Role, TokenInfo};
use crate::serve::Service;

/// Tokens, without secrets (admin).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = [TokenInfo]), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(svc): State<Arc<Service>>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    caller.require(Role::Admin)?;
    blocking(move || Ok(Json(svc.tokens.list()?))).await
}

/// A token to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
}

/// A created token: the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub name: String,
    pub role: Role,
    pub token: String,
}

/// Create a token (admin).
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", security(("bearer" = [])), request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    J(b): J<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    caller.require(Role::Admin)?;
    blocking(move || {
        let (info, token) = svc.tokens.create(&b.name, b.role)?;
        tracing::info!(token = %info.name, role = info.role.as_str(), by = %caller.name, "token created");
        Ok((
            StatusCode::CREATED,
            Json(CreatedToken {
                name: info.name,
                role: info.role,
                token,
            }),
        ))
    })
    .await
}

/// Revoke a token (admin).
#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "tokens", security(("bearer" = [])),
    params(("name" = String, Path, description = "token name")),
    responses((status = 204, description = "revoked"), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    State(svc): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    blocking(move || {
        if svc.tokens.revoke(&name)? {
            tracing::info!(token = %name, by = %caller.name, "token revoked");
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(Problem::not_found(format!("no token {name:?}")))
        }
    })
    .await
}
