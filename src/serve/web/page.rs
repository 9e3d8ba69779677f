//! The HTML of the dashboard's pages. Every value from the config, the plan state or a
//! job goes through [`esc`]; the layout is one readable column at phone width and a
//! table at desktop width, with visible focus and labelled controls.

use chrono::{DateTime, Utc};

use crate::plan::state::PlanState;
use crate::serve::auth::Caller;
use crate::serve::jobs::JobView;
use crate::serve::tokens::Role;
use crate::serve::Service;

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}\
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;background:#20313f;color:#fff}\
header a,header button{color:#fff}main{padding:1rem;max-width:80rem;margin:auto}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.5rem;border-bottom:1px solid #ddd;vertical-align:top}\
.scroll{overflow-x:auto}.badge{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-weight:600}\
.ok{background:#d7f5dd;color:#0b5d1e}.amber{background:#fff1c2;color:#6b4e00}.red{background:#ffd9d6;color:#8a1c12}.grey{background:#e6e6e6;color:#333}\
button{font:inherit;padding:.35rem .8rem;cursor:pointer}:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}\
label{display:block;font-weight:600;margin-bottom:.25rem}input{font:inherit;padding:.4rem;width:100%;max-width:30rem;box-sizing:border-box}\
.error{color:#8a1c12;font-weight:600}";

fn shell(title: &str, header_right: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} — repo</title><style>{STYLE}</style></head><body>\
<header><strong>repo</strong>{header_right}</header><main>{body}</main></body></html>",
        t = esc(title)
    )
}

/// The sign-in page, with an error to show.
pub fn login(error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{err}<form method=\"post\" action=\"/login\">\
<label for=\"token\">API token</label>\
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
<p><button type=\"submit\">Sign in</button></p></form>\
<p>Create a token on the server with <code>repo token create --name NAME --role viewer</code>.</p>"
    );
    shell("Sign in", "", &body)
}

/// A page that only says something.
pub fn message(title: &str, text: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/\">Back to the overview</a></p>",
        esc(title),
        esc(text)
    );
    shell(title, "", &body)
}

/// One plan as the overview shows it.
pub struct PlanRow {
    pub name: String,
    pub repository: String,
    pub schedule: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub state: PlanState,
    /// green, amber, red or grey, and why.
    pub health: (&'static str, String),
}

/// Health from the last result and from staleness against the plan's schedule.
fn health(plan: &crate::plan::Plan, st: &PlanState, now: DateTime<Utc>) -> (&'static str, String) {
    let Some(last) = &st.last_run else {
        return ("grey", "never run on this host".into());
    };
    if matches!(last.status.as_str(), "failed" | "skipped" | "cancelled") {
        return ("red", format!("last run {}", last.status));
    }
    // Stale: past `stale-after`, or two scheduled runs missed.
    let since = st.last_success.unwrap_or(last.finished);
    let stale_after = plan
        .stale_after
        .map(|d| chrono::Duration::from_std(d).unwrap_or_default());
    let missed = plan
        .schedule
        .as_ref()
        .and_then(|s| s.next_after(since))
        .and_then(|first| plan.schedule.as_ref()?.next_after(first))
        .is_some_and(|second| second < now);
    if stale_after.is_some_and(|d| now - since > d) || missed {
        return ("amber", "stale: no recent successful run".into());
    }
    if last.status == "warnings" {
        return ("amber", "last run had warnings".into());
    }
    ("ok", "last run ok".into())
}

/// Every plan, failing and stale ones first.
pub fn plan_rows(svc: &Service) -> Vec<PlanRow> {
    let dir = svc.state_root.join("plans");
    let now = Utc::now();
    let mut rows: Vec<PlanRow> = svc
        .config
        .plans
        .values()
        .map(|p| {
            let state = PlanState::load(&dir, &p.name);
            PlanRow {
                name: p.name.clone(),
                repository: p.repository.clone(),
                schedule: p.schedule.as_ref().map(|s| s.as_str().to_string()),
                next_run: p.schedule.as_ref().and_then(|s| s.next_after(now)),
                health: health(p, &state, now),
                state,
            }
        })
        .collect();
    let rank = |h: &str| match h {
        "red" => 0,
        "amber" => 1,
        "grey" => 2,
        _ => 3,
    };
    rows.sort_by(|a, b| {
        rank(a.health.0)
            .cmp(&rank(b.health.0))
            .then(a.name.cmp(&b.name))
    });
    rows
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| {
        format!(
            "<time datetime=\"{}\">{}</time>",
            t.to_rfc3339(),
            t.format("%Y-%m-%d %H:%M:%S UTC")
        )
    })
    .unwrap_or_else(|| "—".into())
}

fn plan_table(caller: &Caller, csrf: &str, plans: &[PlanRow]) -> String {
    let can_run = caller.role >= Role::Operator;
    let mut s = String::from(
        "<div class=\"scroll\"><table><caption class=\"sr\">Plans</caption><thead><tr><th scope=\"col\">Plan</th>\
<th scope=\"col\">Health</th><th scope=\"col\">Last run</th><th scope=\"col\">Next run</th>\
<th scope=\"col\">Repository</th>",
    );
    if can_run {
        s.push_str("<th scope=\"col\"><span class=\"sr\">Actions</span></th>");
    }
    s.push_str("</tr></thead><tbody>");
    for p in plans {
        let last = p.state.last_run.as_ref().map_or("—".to_string(), |r| {
            format!("{} {}", esc(&r.status), when(Some(r.finished)))
        });
        let next = match &p.schedule {
            Some(sch) => format!("{} <small>({})</small>", when(p.next_run), esc(sch)),
            None => "not scheduled".into(),
        };
        s.push_str(&format!(
            "<tr data-plan=\"{n}\"><th scope=\"row\">{n}</th><td><span class=\"badge {cls}\" data-health=\"{cls}\">{why}</span></td>\
<td>{last}</td><td>{next}</td><td>{repo}</td>",
            n = esc(&p.name),
            cls = p.health.0,
            why = esc(&p.health.1),
            repo = esc(&p.repository),
        ));
        if can_run {
            s.push_str(&format!(
                "<td><form method=\"post\" action=\"/ui/plans/{n}/run\">\
<input type=\"hidden\" name=\"csrf\" value=\"{c}\"><button type=\"submit\" aria-label=\"Run plan {n} now\">Run now</button></form></td>",
                n = esc(&p.name),
                c = esc(csrf),
            ));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

fn job_list(jobs: &[JobView]) -> String {
    let active: Vec<&JobView> = jobs.iter().filter(|j| !j.state.done()).collect();
    if active.is_empty() {
        return "<p>No job is queued or running.</p>".into();
    }
    let mut s = String::from("<ul>");
    for j in active {
        let progress = j.progress.as_ref().map_or(String::new(), |p| {
            let pct = (p.total_bytes > 0).then(|| p.bytes as f64 * 100.0 / p.total_bytes as f64);
            format!(
                " — {}: {} items{}",
                esc(&p.phase),
                p.items,
                pct.map(|v| format!(", {v:.0}%")).unwrap_or_default()
            )
        });
        s.push_str(&format!(
            "<li data-job=\"{id}\">{kind} {plan} <span class=\"badge grey\">{state}</span>{progress} \
<small>by {by}, job {id}</small></li>",
            id = esc(&j.id),
            kind = esc(&j.kind),
            plan = esc(j.plan.as_deref().unwrap_or("")),
            state = j.state.as_str(),
            by = esc(&j.requested_by),
        ));
    }
    s.push_str("</ul>");
    s
}

/// The overview: plans with their health, and the jobs running now.
pub fn overview(caller: &Caller, csrf: &str, plans: &[PlanRow], jobs: &[JobView]) -> String {
    let signed = format!(
        "<form method=\"post\" action=\"/logout\"><span>{} ({})</span> \
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
        esc(&caller.name),
        caller.role.as_str(),
        esc(csrf)
    );
    let body = format!(
        "<h1>Plans</h1>{}<h2>Jobs</h2>{}",
        if plans.is_empty() {
            "<p>The config file defines no plans.</p>".to_string()
        } else {
            plan_table(caller, csrf, plans)
        },
        job_list(jobs)
    );
    shell(
        "Overview",
        &signed,
        &body.replace(
            "class=\"sr\"",
            "class=\"sr\" style=\"position:absolute;left:-9999px\"",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        let page = login(Some("<script>alert(1)</script>"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("<label for=\"token\">"));
    }
}
