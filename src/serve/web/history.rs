//! `/history`: the repository's operation log (every host's), newest first, filtered by
//! kind, plan, result and time; `/history/{id}`: one record with its report and error.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::page::{choice, esc, field, layout, table, url, when};
use super::snapshots::{nz, repo_arg};
use super::Viewer;
use crate::ops::history;
use crate::serve::problem::Problem;
use crate::serve::Service;

/// The filters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HistoryQuery {
    repository: Option<String>,
    kind: Option<String>,
    plan: Option<String>,
    failed: Option<String>,
    since: Option<String>,
}

const KINDS: [&str; 16] = [
    "", "snapshot", "restore", "run", "check", "prune", "forget", "copy", "verify", "follow",
    "repair", "key", "unlock", "settings", "index", "init",
];

/// The list.
pub async fn list(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    axum::extract::Query(q): axum::extract::Query<HistoryQuery>,
) -> Response {
    v.page(move |f| {
        let since = nz(&q.since)
            .map(|s| {
                crate::timespec::parse_time(s, chrono::Utc::now())
                    .map_err(|e| Problem::invalid(format!("since {s:?}: {e}")))
            })
            .transpose()?;
        let (_, repo) = svc.repository(nz(&q.repository))?;
        let failed = nz(&q.failed) == Some("true");
        let req = history::HistoryRequest {
            plan: nz(&q.plan).map(str::to_string),
            kind: nz(&q.kind).map(str::to_string),
            failed,
            since,
        };
        let r = history::run(&repo, &req)?;
        let ra = repo_arg(nz(&q.repository));
        let rows: Vec<Vec<String>> = r
            .records
            .iter()
            .rev()
            .take(1000)
            .map(|rec| {
                let cls = match rec.result.as_str() {
                    "ok" => "ok",
                    "warnings" => "amber",
                    _ => "red",
                };
                vec![
                    when(Some(rec.started)),
                    format!("<a href=\"/history/{}?{ra}\">{}</a>", url(&rec.id), esc(&rec.kind)),
                    esc(rec.plan.as_deref().unwrap_or("")),
                    format!("<span class=\"badge {cls}\">{}</span>", esc(&rec.result)),
                    esc(&rec.host),
                    esc(rec.token.as_deref().unwrap_or(&rec.user)),
                    format!("{:.1} s", (rec.finished - rec.started).num_milliseconds() as f64 / 1000.0),
                    esc(rec.error.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        let kinds: Vec<(&str, &str)> = KINDS.iter().map(|k| (*k, if k.is_empty() { "any" } else { *k })).collect();
        let mut plans: Vec<(&str, &str)> = vec![("", "any")];
        plans.extend(svc.config.plans.keys().map(|k| (k.as_str(), k.as_str())));
        let body = format!(
            "<h1>History</h1><form method=\"get\" action=\"/history\" aria-label=\"Filter the history\"><div class=\"filters\">{}{}{}{}</div>\
<label><input type=\"checkbox\" name=\"failed\" value=\"true\"{}> Only failed, skipped or cancelled</label>\
<p><button type=\"submit\">Filter</button> <a href=\"/history\">Clear</a></p></form><p role=\"status\">{} operations.</p>{}",
            nz(&q.repository).map(|r| format!("<input type=\"hidden\" name=\"repository\" value=\"{}\">", esc(r))).unwrap_or_default(),
            choice("kind", "Kind", &kinds, nz(&q.kind).unwrap_or("")),
            choice("plan", "Plan", &plans, nz(&q.plan).unwrap_or("")),
            field("since", "Since", nz(&q.since).unwrap_or(""), "7d, 2026-11-28, …"),
            if failed { " checked" } else { "" },
            r.records.len(),
            table("Operations", &["Started", "Kind", "Plan", "Result", "Host", "By", "Took", "Error"], &rows),
        );
        Ok(layout(f, "History", "/history", &body))
    })
    .await
}

/// Which repository a record is in.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RecordQuery {
    repository: Option<String>,
}

/// One record.
pub async fn show(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<RecordQuery>,
) -> Response {
    v.page(move |f| {
        let (_, repo) = svc.repository(nz(&q.repository))?;
        let rec = history::status(&repo, &id)?;
        let mut body = format!(
            "<h1>{kind} {plan}</h1><dl><dt>Operation</dt><dd><code>{id}</code></dd><dt>Result</dt><dd data-result>{result}</dd>\
<dt>Started</dt><dd>{started}</dd><dt>Finished</dt><dd>{finished}</dd><dt>Host</dt><dd>{host} (user {user})</dd>\
<dt>By token</dt><dd>{token}</dd><dt>Command</dt><dd><code>{cmd}</code></dd></dl>",
            kind = esc(&rec.kind),
            plan = esc(rec.plan.as_deref().unwrap_or("")),
            id = esc(&rec.id),
            result = esc(&rec.result),
            started = when(Some(rec.started)),
            finished = when(Some(rec.finished)),
            host = esc(&rec.host),
            user = esc(&rec.user),
            token = esc(rec.token.as_deref().unwrap_or("—")),
            cmd = esc(&rec.command.join(" ")),
        );
        if let Some(e) = &rec.error {
            body.push_str(&format!("<h2>Error</h2><p class=\"error\" data-error>{}</p>", esc(e)));
        }
        let pretty = serde_json::to_string_pretty(&rec.report).unwrap_or_default();
        body.push_str(&format!("<h2>Report</h2><pre data-report>{}</pre>", esc(&pretty)));
        Ok(layout(f, &format!("Operation {}", rec.id), "/history", &body))
    })
    .await
}
