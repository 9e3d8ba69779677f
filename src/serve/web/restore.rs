//! `/restore`: choose a snapshot or a moment (for MongoDB on a timeline of restorable
//! ranges, gaps marked), what to restore, where and how; see the preview (what would be
//! created, overwritten, skipped, deleted, and bytes) before anything is written; then
//! restore as a job and watch it on its page. The form travels in the query string until
//! the final, CSRF-protected post, so every step is a link that can be reloaded.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::page::{bytes, choice, esc, field, layout, table, url, Frame};
use super::snapshots::nz;
use super::{form_caller, html, page, Viewer};
use crate::ops::context::Ctx;
use crate::ops::restore::{self, RestoreOutcome};
use crate::serve::api::recovery::{restore_request, submit_restore, RestoreBody};
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::tokens::Role;
use crate::serve::Service;

/// The restore form's fields, as the browser sends them (empty means not given).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RestoreForm {
    repository: Option<String>,
    /// files or mongodb.
    mode: Option<String>,
    snapshot: Option<String>,
    at: Option<String>,
    include: Option<String>,
    /// Exact paths as hex (names that are not UTF-8), from a snapshot page's link.
    include_hex: Option<String>,
    target: Option<String>,
    exclude: Option<String>,
    conflict: Option<String>,
    delete: Option<String>,
    mongodb_plan: Option<String>,
    namespaces: Option<String>,
    rename: Option<String>,
    mongodb_conflict: Option<String>,
    in_place: Option<String>,
    #[serde(skip_serializing)]
    csrf: Option<String>,
}

impl RestoreForm {
    fn mongodb(&self) -> bool {
        nz(&self.mode) == Some("mongodb")
    }

    fn checked(v: &Option<String>) -> bool {
        matches!(nz(v), Some("true" | "on" | "1"))
    }

    /// The API's restore request this form describes.
    fn body(&self) -> ApiResult<RestoreBody> {
        let s = |v: &Option<String>| nz(v).map(str::to_string);
        let mut b = RestoreBody {
            repository: s(&self.repository),
            snapshot: s(&self.snapshot),
            at: s(&self.at),
            include: s(&self.include),
            include_hex: s(&self.include_hex),
            ..RestoreBody::default()
        };
        if self.mongodb() {
            b.mongodb_plan = s(&self.mongodb_plan);
            b.namespaces = s(&self.namespaces);
            b.rename = s(&self.rename);
            b.mongodb_conflict = s(&self.mongodb_conflict);
            b.in_place = Self::checked(&self.in_place);
            if b.mongodb_plan.is_none() {
                return Err(Problem::invalid(
                    "choose the plan whose MongoDB server to restore into",
                ));
            }
        } else {
            b.target = Some(
                nz(&self.target)
                    .ok_or_else(|| Problem::invalid("give a target directory"))?
                    .into(),
            );
            b.exclude = s(&self.exclude);
            b.delete = Self::checked(&self.delete);
            if let Some(c) = nz(&self.conflict) {
                b.conflict = Some(
                    serde_json::from_value(serde_json::Value::String(c.to_string()))
                        .map_err(|_| Problem::invalid(format!("conflict {c:?}: want skip, overwrite, if-newer, if-changed or rename")))?,
                );
            }
        }
        if b.snapshot.is_some() && b.at.is_some() {
            return Err(Problem::invalid("give a snapshot or a moment, not both"));
        }
        Ok(b)
    }

    /// The form as a query string (for links that keep it).
    fn query(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// The form as hidden fields (the final post carries what the preview showed).
    fn hidden(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        let mut s = String::new();
        if let Some(m) = v.as_object() {
            for (k, v) in m {
                if let Some(v) = v.as_str() {
                    s.push_str(&format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        esc(k),
                        esc(v)
                    ));
                }
            }
        }
        s
    }
}

/// The form, with the MongoDB timeline.
pub async fn form(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    axum::extract::Query(q): axum::extract::Query<RestoreForm>,
) -> Response {
    v.page(move |f| render_form(&svc, f, &q, None)).await
}

fn render_form(svc: &Service, f: &Frame, q: &RestoreForm, err: Option<&str>) -> ApiResult<String> {
    let (_, repo) = svc.repository(nz(&q.repository))?;
    let mut snaps = repo.snapshots()?;
    snaps.sort_by_key(|s| std::cmp::Reverse(s.time));
    let mut options: Vec<(String, String)> = vec![(
        String::new(),
        "the newest (or the one before the moment)".into(),
    )];
    options.extend(snaps.iter().take(300).map(|s| {
        (
            s.id.to_string(),
            format!(
                "{} {} {} {}",
                s.time.format("%Y-%m-%d %H:%M:%S"),
                s.id.short(),
                s.host,
                s.paths.join(", ")
            ),
        )
    }));
    let opts: Vec<(&str, &str)> = options
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mongo_plans: Vec<(&str, &str)> = svc
        .config
        .plans
        .values()
        .filter(|p| p.mongodb.is_some())
        .map(|p| (p.name.as_str(), p.name.as_str()))
        .collect();
    let mode = if q.mongodb() { "mongodb" } else { "files" };
    let err = err
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let roots: Vec<String> = svc
        .config
        .service
        .restore_roots
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    let radio = |val: &str, text: &str| {
        format!(
            "<label><input type=\"radio\" name=\"mode\" value=\"{val}\"{}> {text}</label>",
            if mode == val { " checked" } else { "" }
        )
    };
    let link = |at: chrono::DateTime<chrono::Utc>| {
        let mut f = q.clone();
        f.mode = Some("mongodb".into());
        f.at = Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        f.snapshot = None;
        format!("/restore?{}", f.query())
    };
    let timeline = super::timeline::render(&repo, &link)?;
    let body = format!(
        "<h1>Restore</h1>{err}{timeline}<form method=\"get\" action=\"/restore/preview\" aria-label=\"Restore\">\
{repo_field}<fieldset><legend>What</legend>{m1}{m2}\
{snap}{at}{inc}{inc_hex}</fieldset>\
<fieldset><legend>Files: where and how</legend>{target}{conflict}{exclude}\
<label><input type=\"checkbox\" name=\"delete\" value=\"true\"{del}> Also delete files the snapshot does not have</label></fieldset>\
<fieldset><legend>MongoDB: where and how</legend>{mplan}{ns}{rename}{mconf}\
<label><input type=\"checkbox\" name=\"in_place\" value=\"true\"{inplace}> Also write collections no rename rule covers back in place</label></fieldset>\
<p><button type=\"submit\" id=\"preview\">Preview</button> <small class=\"muted\">Nothing is written until you confirm on the next page.</small></p></form>",
        repo_field = nz(&q.repository)
            .map(|r| format!("<input type=\"hidden\" name=\"repository\" value=\"{}\">", esc(r)))
            .unwrap_or_default(),
        m1 = radio("files", "Files"),
        m2 = radio("mongodb", "MongoDB collections"),
        snap = choice("snapshot", "Snapshot", &opts, nz(&q.snapshot).unwrap_or("")),
        at = field("at", "Or the state at this moment", nz(&q.at).unwrap_or(""), "2026-12-01T14:05:00Z, 2h; for MongoDB the oplog is replayed up to it; pick one on the timeline above"),
        inc = field("include", "Paths or namespaces' files to restore", nz(&q.include).unwrap_or(""), "comma-separated snapshot paths; empty: everything"),
        inc_hex = exact_paths(nz(&q.include_hex)),
        target = field("target", "Target directory", nz(&q.target).unwrap_or(""), &if roots.is_empty() { "file restores need [service] restore-roots in the config".to_string() } else { format!("inside {}", roots.join(", ")) }),
        conflict = choice("conflict", "When a file exists", &[("overwrite", "overwrite"), ("skip", "skip it"), ("if-newer", "overwrite if the snapshot's is newer"), ("if-changed", "overwrite if its content differs"), ("rename", "keep it, restore next to it")], nz(&q.conflict).unwrap_or("overwrite")),
        exclude = field("exclude", "Leave out", nz(&q.exclude).unwrap_or(""), "comma-separated globs"),
        del = if RestoreForm::checked(&q.delete) { " checked" } else { "" },
        mplan = if mongo_plans.is_empty() { "<p class=\"muted\">No plan has a MongoDB source.</p>".to_string() } else { choice("mongodb_plan", "Into the server of plan", &mongo_plans, nz(&q.mongodb_plan).unwrap_or("")) },
        ns = field("namespaces", "Namespaces", nz(&q.namespaces).unwrap_or(""), "comma-separated globs such as app.users, app.*; empty: all"),
        rename = field("rename", "Rename", nz(&q.rename).unwrap_or(""), "FROM:TO rules such as app.*:restored.*"),
        mconf = choice("mongodb_conflict", "When a collection exists", &[("fail", "stop"), ("skip", "skip it"), ("overwrite", "overwrite its documents"), ("drop", "drop it first")], nz(&q.mongodb_conflict).unwrap_or("fail")),
        inplace = if RestoreForm::checked(&q.in_place) { " checked" } else { "" },
    );
    Ok(layout(f, "Restore", "/restore", &body))
}

/// What the restore would do, nothing written; the button to do it (operators).
pub async fn preview(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    axum::extract::Query(q): axum::extract::Query<RestoreForm>,
) -> Response {
    v.page(move |f| {
        let body = match q
            .body()
            .and_then(|b| Ok((restore_request(&svc, &b, true)?, b)))
        {
            Ok((req, b)) => {
                let name = svc.repository_name(b.repository.as_deref())?;
                let repo = svc.repos.fresh(&name)?;
                match restore::run(&repo, &req, &Ctx::default()) {
                    Ok(o) => o,
                    Err(e) => return render_form(&svc, f, &q, Some(&Problem::from(e).detail)),
                }
            }
            Err(p) => return render_form(&svc, f, &q, Some(&p.detail)),
        };
        Ok(render_preview(f, &q, &body))
    })
    .await
}

fn render_preview(f: &Frame, q: &RestoreForm, o: &RestoreOutcome) -> String {
    let report = match o {
        RestoreOutcome::Files(r) => {
            let rows: Vec<Vec<String>> = r
                .plan
                .iter()
                .take(2000)
                .map(|a| {
                    let action = serde_json::to_value(&a.action)
                        .ok()
                        .map(|v| match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .unwrap_or_default();
                    vec![esc(&action), esc(&a.path.display()), bytes(a.bytes)]
                })
                .collect();
            let more = if r.plan.len() > rows.len() {
                format!(
                    "<p>{} files; the first {} shown.</p>",
                    r.plan.len(),
                    rows.len()
                )
            } else {
                String::new()
            };
            let count =
                |f: fn(&restore::Action) -> bool| r.plan.iter().filter(|a| f(&a.action)).count();
            let problems = if r.errors.is_empty() {
                String::new()
            } else {
                format!("<p class=\"error\">{}</p>", esc(&r.errors.join("; ")))
            };
            format!(
                "<p role=\"status\" data-preview>{files} files ({b}) to write: {created} new, {over} overwritten, {renamed} next to an existing one; \
{skipped} kept as they are, {up} already up to date, {del} deleted.</p>{problems}{more}{tbl}",
                files = r.files,
                b = bytes(r.bytes),
                created = count(|a| matches!(a, restore::Action::Create)),
                over = count(|a| matches!(a, restore::Action::Overwrite)),
                renamed = count(|a| matches!(a, restore::Action::Rename(_))),
                skipped = count(|a| matches!(a, restore::Action::Skip)),
                up = count(|a| matches!(a, restore::Action::UpToDate)),
                del = count(|a| matches!(a, restore::Action::Delete)),
                tbl = table("What the restore would do", &["Action", "Path", "Bytes"], &rows),
            )
        }
        #[cfg(feature = "mongo")]
        RestoreOutcome::Mongodb(r) => {
            let v = serde_json::to_value(r).unwrap_or_default();
            let rows: Vec<Vec<String>> = v["collections"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            let s = |k: &str| {
                                esc(&c[k]
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| c[k].to_string()))
                            };
                            vec![s("source"), s("target"), s("action"), s("documents")]
                        })
                        .collect()
                })
                .unwrap_or_default();
            let replay = v["replay"]
                .as_object()
                .map(|_| "<p>The oplog will be replayed up to the moment after the snapshot is restored.</p>".to_string())
                .unwrap_or_default();
            format!(
                "<p role=\"status\" data-preview>From snapshot <a href=\"/snapshots/{id}\">{short}</a>: {n} collections.</p>{replay}{}",
                table("Collections", &["Collection", "Into", "Action", "Documents"], &rows),
                id = r.snapshot,
                short = r.snapshot.short(),
                n = rows.len(),
            )
        }
    };
    let back = format!(
        "<a href=\"/restore?{}\">Change the restore</a>",
        esc(&q.query())
    );
    let action = if f.can(Role::Operator) {
        format!(
            "<form method=\"post\" action=\"/ui/restore\">{}{}<button type=\"submit\" id=\"restore-now\">Restore now</button> {back}</form>",
            f.csrf_field(),
            q.hidden()
        )
    } else {
        format!("<p>Restoring needs an operator's token; you can preview only.</p><p>{back}</p>")
    };
    let into = match (q.mongodb(), nz(&q.target), nz(&q.mongodb_plan)) {
        (false, Some(t), _) => format!("<p>Into <code>{}</code>.</p>", esc(t)),
        (true, _, Some(p)) => format!(
            "<p>Into the MongoDB server of plan <strong>{}</strong>.</p>",
            esc(p)
        ),
        _ => String::new(),
    };
    let body = format!(
        "<h1>Restore preview</h1><p class=\"muted\">Nothing has been written.</p>{into}{report}{action}"
    );
    layout(f, "Restore preview", "/restore", &body)
}

/// Starts the restore the preview showed (operators); to the job's page.
pub async fn run(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let (caller, _, body) = match form_caller(&svc, req, Role::Operator).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let f: RestoreForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return html(
                StatusCode::BAD_REQUEST,
                page::message("Refused", &e.to_string()),
            )
        }
    };
    let started = tokio::task::spawn_blocking(move || {
        let b = f.body()?;
        submit_restore(&svc, &caller.name, &b, "POST /ui/restore")
    })
    .await;
    match started {
        Ok(Ok(job)) => Redirect::to(&format!("/jobs/{}", url(&job.id))).into_response(),
        Ok(Err(p)) => html(
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
            page::message("Not started", &p.detail),
        ),
        Err(_) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            page::message("Not started", "internal error"),
        ),
    }
}

/// The exact paths a snapshot page asked for (names that are not UTF-8 travel as hex): a
/// hidden field that keeps them, and the paths as people read them.
fn exact_paths(hex_list: Option<&str>) -> String {
    let Some(list) = hex_list else {
        return String::new();
    };
    let shown: Vec<String> = list
        .split(',')
        .map(|h| match hex::decode(h.trim()) {
            Ok(b) => format!("<code>{}</code>", esc(&crate::tree::path::shown(&b))),
            Err(_) => format!("<code>{}</code> (not hex)", esc(h)),
        })
        .collect();
    format!(
        "<input type=\"hidden\" name=\"include_hex\" value=\"{}\"><p>Also restores {} \
(names that are not UTF-8, kept exactly).</p>",
        esc(list),
        shown.join(", ")
    )
}
