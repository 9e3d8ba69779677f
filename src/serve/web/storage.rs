//! `/storage`: where a repository's space goes — its size over time (points the service
//! records after each statistics walk), dedup and compression ratios, what prune could
//! reclaim, each snapshot's unique bytes — and the latest check's findings.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::chart::over_time;
use super::page::{bytes, esc, layout, table, url, when};
use super::snapshots::{nz, repo_arg};
use super::Viewer;
use crate::ops::context::Ctx;
use crate::ops::{history, stats};
use crate::serve::Service;

/// Which repository.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StorageQuery {
    repository: Option<String>,
}

/// The first `findings` array anywhere in a report (a check's own, or a plan run's step).
fn findings(v: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
    match v {
        serde_json::Value::Object(m) => m
            .get("findings")
            .and_then(|f| f.as_array())
            .or_else(|| m.values().find_map(findings)),
        serde_json::Value::Array(a) => a.iter().find_map(findings),
        _ => None,
    }
}

/// The page.
pub async fn show(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    axum::extract::Query(q): axum::extract::Query<StorageQuery>,
) -> Response {
    v.page(move |f| {
        let (name, repo) = svc.repository(nz(&q.repository))?;
        let (at, s) = match svc.cached_stats(&name) {
            Some(c) => c,
            None => {
                let s = stats::run(&repo, &stats::StatsRequest::default(), &Ctx::default())?;
                svc.keep_stats(&name, &s);
                (chrono::Utc::now(), s)
            }
        };
        let ra = repo_arg(nz(&q.repository));
        let quota = s
            .quota_bytes
            .map(|qb| format!("<dt>Quota</dt><dd>{} ({:.0}% used)</dd>", bytes(qb), s.size_on_disk as f64 * 100.0 / qb.max(1) as f64))
            .unwrap_or_default();
        let summary = format!(
            "<dl><dt>Size on storage</dt><dd data-size>{}</dd>{quota}<dt>Snapshots</dt><dd>{}</dd><dt>Packs</dt><dd>{}</dd>\
<dt>Deduplication</dt><dd>{:.2}× ({} of snapshot data kept as {} of distinct chunks)</dd>\
<dt>Compression</dt><dd>{:.2}× ({} stored)</dd><dt>Prune could reclaim</dt><dd data-reclaimable>{}</dd>\
<dt>Figures from</dt><dd>{}</dd></dl>",
            bytes(s.size_on_disk),
            s.snapshots,
            s.packs,
            s.dedup_ratio,
            bytes(s.snapshots_raw_bytes),
            bytes(s.data_raw_bytes),
            s.compression_ratio,
            bytes(s.data_stored_bytes),
            bytes(s.reclaimable_bytes),
            when(Some(at)),
        );
        let points = svc.size_history(&name);
        let chart = over_time(&points, &format!("size of repository {name} over time"));
        let mut per: Vec<&stats::SnapshotStats> = s.per_snapshot.iter().collect();
        per.sort_by_key(|p| std::cmp::Reverse(p.time));
        let rows: Vec<Vec<String>> = per
            .iter()
            .take(500)
            .map(|p| {
                vec![
                    when(Some(p.time)),
                    format!("<a href=\"/snapshots/{}?{ra}\">{}</a>", url(&p.id), esc(p.id.get(..8).unwrap_or(&p.id))),
                    p.files.to_string(),
                    bytes(p.raw_bytes),
                    bytes(p.unique_raw_bytes),
                    bytes(p.unique_stored_bytes),
                ]
            })
            .collect();
        let check = latest_check(&repo, &ra);
        let body = format!(
            "<h1>Storage of {}</h1>{summary}<h2>Size over time</h2>{chart}<h2>Latest check</h2>{check}\
<h2>Per snapshot</h2><p class=\"muted\">Unique bytes are what forgetting only that snapshot would free.</p>{}",
            esc(&name),
            table(
                "Per snapshot",
                &["Taken", "Snapshot", "Files", "Size", "Unique (raw)", "Unique (stored)"],
                &rows
            ),
        );
        Ok(layout(f, "Storage", "/storage", &body))
    })
    .await
}

fn latest_check(repo: &crate::repository::Repository, ra: &str) -> String {
    let req = history::HistoryRequest {
        kind: Some("check".into()),
        ..Default::default()
    };
    let recs = match history::run(repo, &req) {
        Ok(r) => r.records,
        Err(e) => {
            return format!(
                "<p class=\"error\">The operation log cannot be read: {}</p>",
                esc(&e.to_string())
            )
        }
    };
    let Some(rec) = recs.last() else {
        return "<p>No check has been recorded in this repository. Run <code>repo check</code> or give a plan <code>check</code>.</p>".into();
    };
    let cls = if rec.result == "ok" { "ok" } else { "red" };
    let mut s = format!(
        "<p><a href=\"/history/{}?{ra}\">{}</a> <span class=\"badge {cls}\" data-check=\"{}\">{}</span></p>",
        url(&rec.id),
        when(Some(rec.finished)),
        esc(&rec.result),
        esc(&rec.result)
    );
    if let Some(e) = &rec.error {
        s.push_str(&format!("<p class=\"error\">{}</p>", esc(e)));
    }
    match findings(&rec.report) {
        Some(fs) if !fs.is_empty() => {
            let rows: Vec<Vec<String>> = fs
                .iter()
                .take(200)
                .map(|f| {
                    let g = |k: &str| esc(f[k].as_str().unwrap_or(""));
                    vec![
                        g("severity"),
                        g("kind"),
                        g("message"),
                        format!("<code>{}</code>", g("fix")),
                    ]
                })
                .collect();
            s.push_str(&table(
                "Findings",
                &["Severity", "Kind", "What", "Fix"],
                &rows,
            ));
        }
        Some(_) => s.push_str("<p>No findings.</p>"),
        None => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_found_in_nested_reports() {
        let v = serde_json::json!({"steps": [{"name": "snapshot"}, {"report": {"findings": [{"kind": "x"}]}}]});
        assert_eq!(findings(&v).unwrap().len(), 1);
        assert!(findings(&serde_json::json!({"a": 1})).is_none());
    }
}
