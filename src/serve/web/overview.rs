//! The overview (`/`): every plan with its health, last and next run, last snapshot,
//! bytes added and a size trend, failing and stale plans first; the jobs queued or
//! running with their progress (the page reloads itself while there are any), each
//! linking to its live page.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::chart::sparkline;
use super::page::{bytes, esc, layout_with, url, when, Frame};
use crate::plan::state::PlanState;
use crate::serve::jobs::JobView;
use crate::serve::tokens::Role;
use crate::serve::Service;
use crate::snapshot::Snapshot;

/// One plan as the overview shows it.
pub struct PlanRow {
    pub name: String,
    pub repository: String,
    pub schedule: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub state: PlanState,
    /// ok, amber, red or grey, and why.
    pub health: (&'static str, String),
    /// The plan's snapshots, oldest first (at most the last 30).
    pub snapshots: Vec<Snapshot>,
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

/// Every plan, failing and stale ones first. Reads each repository's snapshot list once
/// (blocking: call it off the async runtime); a repository that cannot be read leaves
/// its plans without snapshots rather than failing the page.
pub fn plan_rows(svc: &Service) -> Vec<PlanRow> {
    let dir = svc.state_root.join("plans");
    let now = Utc::now();
    let mut by_repo: HashMap<String, Vec<Snapshot>> = HashMap::new();
    for p in svc.config.plans.values() {
        if by_repo.contains_key(&p.repository) {
            continue;
        }
        let snaps = svc
            .repos
            .get(&p.repository)
            .and_then(|r| r.snapshots())
            .unwrap_or_else(|e| {
                tracing::warn!(repository = %p.repository, "overview: {e}");
                Vec::new()
            });
        by_repo.insert(p.repository.clone(), snaps);
    }
    let mut rows: Vec<PlanRow> = svc
        .config
        .plans
        .values()
        .map(|p| {
            let state = PlanState::load(&dir, &p.name);
            let tag = format!("plan:{}", p.name);
            let mut snapshots: Vec<Snapshot> = by_repo
                .get(&p.repository)
                .map(|v| {
                    v.iter()
                        .filter(|s| s.tags.contains(&tag))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            snapshots.sort_by_key(|s| s.time);
            let skip = snapshots.len().saturating_sub(30);
            snapshots.drain(..skip);
            PlanRow {
                name: p.name.clone(),
                repository: p.repository.clone(),
                schedule: p.schedule.as_ref().map(|s| s.as_str().to_string()),
                next_run: p.schedule.as_ref().and_then(|s| s.next_after(now)),
                health: health(p, &state, now),
                state,
                snapshots,
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

fn plan_row(f: &Frame, p: &PlanRow) -> String {
    let last = p.state.last_run.as_ref().map_or("—".to_string(), |r| {
        let err = r
            .error
            .as_deref()
            .map(|e| format!("<br><small class=\"error\" data-error>{}</small>", esc(e)))
            .unwrap_or_default();
        format!("{} {}{err}", esc(&r.status), when(Some(r.finished)))
    });
    let next = match &p.schedule {
        Some(sch) => format!("{} <small>({})</small>", when(p.next_run), esc(sch)),
        None => "not scheduled".into(),
    };
    let snap = p.snapshots.last().map_or("—".to_string(), |s| {
        format!(
            "<a href=\"/snapshots/{id}\">{short}</a> {t}<br><small>{total}, added {added}</small>",
            id = s.id,
            short = s.id.short(),
            t = when(Some(s.time)),
            total = bytes(s.summary.total_bytes),
            added = bytes(s.summary.bytes_added),
        )
    });
    let sizes: Vec<u64> = p.snapshots.iter().map(|s| s.summary.total_bytes).collect();
    let trend = sparkline(
        &sizes,
        &format!("size of the last {} snapshots of {}", sizes.len(), p.name),
    );
    let mut s = format!(
        "<tr data-plan=\"{n}\"><th scope=\"row\"><a href=\"/snapshots?plan={u}\">{n}</a></th>\
<td><span class=\"badge {cls}\" data-health=\"{cls}\">{why}</span></td>\
<td>{last}</td><td>{next}</td><td>{snap}</td><td>{trend}</td><td>{repo}</td>",
        n = esc(&p.name),
        u = url(&p.name),
        cls = p.health.0,
        why = esc(&p.health.1),
        repo = esc(&p.repository),
    );
    if f.can(Role::Operator) {
        s.push_str(&format!(
            "<td><form method=\"post\" action=\"/ui/plans/{u}/run\">{c}\
<button type=\"submit\" aria-label=\"Run plan {n} now\">Run now</button></form></td>",
            u = url(&p.name),
            n = esc(&p.name),
            c = f.csrf_field(),
        ));
    }
    s.push_str("</tr>");
    s
}

fn plan_table(f: &Frame, plans: &[PlanRow]) -> String {
    let mut s = String::from(
        "<div class=\"scroll\"><table><caption class=\"sr\">Plans</caption><thead><tr><th scope=\"col\">Plan</th>\
<th scope=\"col\">Health</th><th scope=\"col\">Last run</th><th scope=\"col\">Next run</th>\
<th scope=\"col\">Last snapshot</th><th scope=\"col\">Size trend</th><th scope=\"col\">Repository</th>",
    );
    if f.can(Role::Operator) {
        s.push_str("<th scope=\"col\"><span class=\"sr\">Actions</span></th>");
    }
    s.push_str("</tr></thead><tbody>");
    for p in plans {
        s.push_str(&plan_row(f, p));
    }
    s.push_str("</tbody></table></div>");
    s
}

/// A job's progress as text and a `<progress>` bar.
pub fn progress_of(j: &JobView) -> String {
    let Some(p) = &j.progress else {
        return String::new();
    };
    let bar = if p.total_bytes > 0 {
        format!(
            "<progress max=\"{}\" value=\"{}\" aria-label=\"progress of job {}\"></progress>",
            p.total_bytes,
            p.bytes.min(p.total_bytes),
            esc(&j.id)
        )
    } else {
        String::new()
    };
    format!(
        " {}: {} {}, {}{} {bar}",
        esc(&p.phase),
        p.items,
        esc(&p.unit),
        bytes(p.bytes),
        if p.total_bytes > 0 {
            format!(" of {}", bytes(p.total_bytes))
        } else {
            String::new()
        }
    )
}

fn job_list(jobs: &[JobView]) -> String {
    let active: Vec<&JobView> = jobs.iter().filter(|j| !j.state.done()).collect();
    if active.is_empty() {
        return "<p>No job is queued or running.</p>".into();
    }
    let mut s = String::from("<ul>");
    for j in active {
        s.push_str(&format!(
            "<li data-job=\"{id}\"><a href=\"/jobs/{id}\">{kind} {plan}</a> <span class=\"badge grey\">{state}</span>{progress} \
<small>by {by}</small></li>",
            id = esc(&j.id),
            kind = esc(&j.kind),
            plan = esc(j.plan.as_deref().unwrap_or("")),
            state = j.state.as_str(),
            progress = progress_of(j),
            by = esc(&j.requested_by),
        ));
    }
    s.push_str("</ul>");
    s
}

/// The overview page.
pub fn render(f: &Frame, plans: &[PlanRow], jobs: &[JobView]) -> String {
    let body = format!(
        "<h1>Plans</h1>{}<h2>Jobs</h2>{}",
        if plans.is_empty() {
            "<p>The config file defines no plans.</p>".to_string()
        } else {
            plan_table(f, plans)
        },
        job_list(jobs)
    );
    // While a job is queued or running the page follows it (every five seconds: its
    // progress here, its health once it ends); an idle overview does not reload.
    let head = if jobs.iter().any(|j| !j.state.done()) {
        "<meta http-equiv=\"refresh\" content=\"5\">"
    } else {
        ""
    };
    layout_with(f, "Overview", "/", head, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::auth::Caller;
    use crate::serve::jobs::JobState;

    fn job(state: JobState) -> JobView {
        JobView {
            id: "01J".into(),
            kind: "run".into(),
            plan: Some("p<1>".into()),
            repository: "main".into(),
            requested_by: "ops".into(),
            state,
            created: Utc::now(),
            started: None,
            finished: None,
            progress: None,
            messages: Vec::new(),
            report: serde_json::Value::Null,
            error: None,
        }
    }

    #[test]
    fn the_overview_follows_running_jobs_and_escapes_them() {
        let caller = Caller {
            name: "v".into(),
            role: Role::Viewer,
        };
        let f = Frame {
            caller: &caller,
            csrf: "c",
        };
        let busy = render(&f, &[], &[job(JobState::Running)]);
        assert!(busy.contains("http-equiv=\"refresh\"") && busy.contains("p&lt;1&gt;"));
        let idle = render(&f, &[], &[job(JobState::Ok)]);
        assert!(!idle.contains("http-equiv") && idle.contains("No job is queued or running"));
        assert!(!idle.contains("Run now"), "a viewer gets no buttons");
    }
}
