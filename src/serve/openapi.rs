//! The OpenAPI 3.1 document, generated from the handlers' annotations (`utoipa`), served
//! at `/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;
use super::jobs::{JobState, JobView, MessageView, ProgressView};
use super::problem::Problem;
use super::tokens::{Role, TokenInfo};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "repo serve", description = "Backups of files and MongoDB: snapshots, restores at any moment, jobs, plans. Every endpoint but /healthz and /api/openapi.json takes `Authorization: Bearer TOKEN` (`repo token create`)."),
    paths(
        api::backup::list, api::backup::create, api::backup::show, api::backup::verify,
        api::backup::forget, api::backup::storage,
        api::recovery::scan, api::recovery::preview, api::recovery::restore,
        api::recovery::status, api::recovery::history,
        api::jobs::list, api::jobs::show, api::jobs::cancel, api::jobs::events,
        api::plans::list, api::plans::run,
        api::tokens::list, api::tokens::create, api::tokens::revoke, api::audit::list,
        api::healthz, api::metrics, api::openapi,
    ),
    components(schemas(Problem, JobView, JobState, ProgressView, MessageView, Role, TokenInfo,
        api::Health, api::backup::CreateBackup, api::backup::SnapshotDetail, api::backup::TopEntry,
        api::recovery::RestoreBody, api::plans::PlanView, api::plans::TaskView, api::tokens::NewToken,
        api::tokens::CreatedToken, super::follow::FollowView, super::audit::AuditEntry)),
    modifiers(&Bearer),
)]
struct Doc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut d = Doc::openapi();
    d.info.version = env!("CARGO_PKG_VERSION").to_string();
    d
}
