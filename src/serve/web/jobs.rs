//! `/jobs/{id}`: one job, live. While it is queued or running the page reloads itself
//! every two seconds (a `<meta>` refresh: no script), showing its phase, items, bytes and
//! a progress bar; when it ends, its result, error and report. Operators can cancel it.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::overview::progress_of;
use super::page::{esc, layout_with, url, when};
use super::{form_caller, html, page, Viewer};
use crate::serve::problem::Problem;
use crate::serve::tokens::Role;
use crate::serve::Service;

/// A job's page.
pub async fn show(State(svc): State<Arc<Service>>, v: Viewer, Path(id): Path<String>) -> Response {
    v.page(move |f| {
        let j = svc
            .jobs
            .get(&id)
            .ok_or_else(|| Problem::not_found(format!("no job {id} (jobs are kept while the service runs; see History for older operations)")))?;
        let done = j.state.done();
        let cls = match j.state.as_str() {
            "ok" => "ok",
            "warnings" => "amber",
            "failed" | "cancelled" => "red",
            _ => "grey",
        };
        let mut body = format!(
            "<h1>{kind} {plan}</h1><p><span class=\"badge {cls}\" data-state=\"{state}\" role=\"status\">{state}</span>{progress}</p>\
<dl><dt>Job</dt><dd><code>{id}</code></dd><dt>Repository</dt><dd>{repo}</dd><dt>Requested by</dt><dd>{by}</dd>\
<dt>Queued</dt><dd>{created}</dd><dt>Started</dt><dd>{started}</dd><dt>Finished</dt><dd>{finished}</dd></dl>",
            kind = esc(&j.kind),
            plan = esc(j.plan.as_deref().unwrap_or("")),
            state = j.state.as_str(),
            progress = if done { String::new() } else { progress_of(&j) },
            id = esc(&j.id),
            repo = esc(&j.repository),
            by = esc(&j.requested_by),
            created = when(Some(j.created)),
            started = when(j.started),
            finished = when(j.finished),
        );
        if let Some(e) = &j.error {
            body.push_str(&format!("<h2>Error</h2><p class=\"error\" data-error>{}</p>", esc(e)));
        }
        if !j.messages.is_empty() {
            body.push_str("<h2>Messages</h2><ul>");
            for m in &j.messages {
                body.push_str(&format!(
                    "<li>{} {} {}{}</li>",
                    when(Some(m.time)),
                    esc(&m.level),
                    m.subject.as_deref().map(|s| format!("{}: ", esc(s))).unwrap_or_default(),
                    esc(&m.text)
                ));
            }
            body.push_str("</ul>");
        }
        if !done && f.can(Role::Operator) {
            body.push_str(&format!(
                "<form method=\"post\" action=\"/ui/jobs/{}/cancel\">{}<button type=\"submit\">Cancel this job</button></form>",
                url(&j.id),
                f.csrf_field()
            ));
        }
        if done && !j.report.is_null() {
            let pretty = serde_json::to_string_pretty(&j.report).unwrap_or_default();
            body.push_str(&format!("<h2>Report</h2><pre data-report>{}</pre>", esc(&pretty)));
        }
        let head = if done { "" } else { "<meta http-equiv=\"refresh\" content=\"2\">" };
        Ok(layout_with(f, &format!("Job {}", j.id), "", head, &body))
    })
    .await
}

/// Cancels a job (operators); back to its page.
pub async fn cancel(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let caller = match form_caller(&svc, req, Role::Operator).await {
        Ok((c, _, _)) => c,
        Err(r) => return *r,
    };
    match svc.jobs.cancel(&id) {
        None => html(
            StatusCode::NOT_FOUND,
            page::message("Not found", "No such job."),
        ),
        Some(_) => {
            tracing::info!(job = %id, by = %caller.name, "cancel requested");
            Redirect::to(&format!("/jobs/{}", url(&id))).into_response()
        }
    }
}
