//! The scheduler: one thread that runs each plan with a schedule when it falls due, plus
//! up to `[service] jitter` at random — and the plan's check and prune when they have
//! schedules of their own. A task whose previous run is still going is skipped that
//! time (one plan task never runs twice at once; the skip is logged and counted). At
//! start, a task whose last run on this host is older than its most recent due time
//! (the service was down then) runs once at once — not once per missed time. Once a
//! minute it also looks for plans with no success for `stale-after` and raises `stale`
//! (once per stretch: again only after a success).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Service;
use crate::ops::run::Task;
use crate::plan::notify::{self, Event, Notice};
use crate::plan::state::PlanState;

/// The running scheduler thread.
pub struct Scheduler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Stops the thread (it starts nothing more) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn jitter(max_secs: u64) -> chrono::Duration {
    if max_secs == 0 {
        return chrono::Duration::zero();
    }
    chrono::Duration::milliseconds(rand::random::<u64>() as i64 % (max_secs as i64 * 1000))
}

/// A plan's task: what the scheduler keeps a due time for.
type Key = (String, Task);

/// When each scheduled plan task runs next: now for one that missed a run while the
/// service was down, else its next due time after now.
fn first_times(svc: &Service, now: DateTime<Utc>) -> BTreeMap<Key, DateTime<Utc>> {
    let dir = svc.state_root.join("plans");
    let mut due = BTreeMap::new();
    for plan in svc.config.plans.values() {
        let st = PlanState::load(&dir, &plan.name);
        svc.metrics.plan_state(&plan.name, &st);
        for task in Task::ALL {
            let Some(s) = task.schedule(plan) else {
                continue;
            };
            let missed = st
                .last(task.as_str())
                .and_then(|r| s.next_after(r.started))
                .is_some_and(|t| t <= now);
            let at = if missed {
                tracing::info!(plan = %plan.name, task = task.as_str(), "a scheduled run was missed while the service was down: running it now");
                Some(now)
            } else {
                s.next_after(now)
                    .map(|t| t + jitter(svc.config.service.jitter_secs))
            };
            if let Some(at) = at {
                svc.metrics.next_run(&plan.name, task, at);
                due.insert((plan.name.clone(), task), at);
            }
        }
    }
    due
}

/// Starts the scheduler thread.
pub fn start(svc: Arc<Service>) -> Scheduler {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || run(&svc, &flag))
        .map_err(|e| tracing::error!("cannot start the scheduler: {e}"))
        .ok();
    Scheduler { stop, thread }
}

/// Raises `stale` for plans without a success for their `stale-after` (counted from the
/// service's start for a plan that never succeeded on this host).
fn check_stale(svc: &Service, alerted: &mut HashMap<String, Option<DateTime<Utc>>>) {
    let dir = svc.state_root.join("plans");
    let now = Utc::now();
    for plan in svc.config.plans.values() {
        let Some(limit) = plan.stale_after else {
            continue;
        };
        let st = PlanState::load(&dir, &plan.name);
        let since = st.last_success.unwrap_or(svc.started);
        let stale = (now - since).to_std().is_ok_and(|age| age >= limit);
        if !stale || alerted.get(&plan.name) == Some(&st.last_success) {
            continue;
        }
        alerted.insert(plan.name.clone(), st.last_success);
        let host = plan.host.clone().unwrap_or_else(crate::sysinfo::hostname);
        let notice = Notice {
            task: "backup".into(),
            event: Event::Stale,
            plan: plan.name.clone(),
            host: host.clone(),
            operation: st
                .last_run
                .as_ref()
                .map(|r| r.id.clone())
                .unwrap_or_default(),
            status: "stale".into(),
            error: Some(format!(
                "no successful run since {}",
                since.format("%Y-%m-%d %H:%M:%S UTC")
            )),
            snapshot: None,
            seconds: 0.0,
            bytes_added: 0,
            message: format!(
                "plan {} on {host}: stale — no successful run since {}",
                plan.name,
                since.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        };
        tracing::warn!(plan = %plan.name, "{}", notice.message);
        for name in &plan.notify {
            let Some(t) = svc.config.notify.get(name) else {
                continue;
            };
            for d in notify::deliver(t, &notice).into_iter().filter(|d| !d.ok) {
                tracing::warn!(plan = %plan.name, target = %d.target, "stale notification not delivered: {}", d.error.unwrap_or_default());
            }
        }
    }
}

fn run(svc: &Arc<Service>, stop: &AtomicBool) {
    let mut due = first_times(svc, Utc::now());
    let mut alerted = HashMap::new();
    let mut stale_checked: Option<std::time::Instant> = None;
    let mut lag_checked = std::time::Instant::now();
    let mut lagging = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) && !svc.jobs.closed() {
        if stale_checked.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            check_stale(svc, &mut alerted);
            stale_checked = Some(std::time::Instant::now());
        }
        if lag_checked.elapsed() >= Duration::from_secs(5) {
            super::follow::check_lag(svc, &mut lagging);
            lag_checked = std::time::Instant::now();
        }
        let now = Utc::now();
        let ready: Vec<Key> = due
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ready {
            let (name, task) = (&key.0, key.1);
            match svc.run_plan(name, task, "scheduler") {
                Ok(job) => {
                    tracing::info!(plan = %name, task = task.as_str(), job = %job.id, "scheduled run queued")
                }
                Err(p) => {
                    svc.metrics.skipped(name, task);
                    tracing::warn!(plan = %name, task = task.as_str(), "scheduled run skipped: {}", p.detail);
                }
            }
            let next = svc
                .config
                .plans
                .get(name)
                .and_then(|p| task.schedule(p))
                .and_then(|s| s.next_after(now.max(due[&key])));
            match next {
                Some(t) => {
                    let t = t + jitter(svc.config.service.jitter_secs);
                    svc.metrics.next_run(name, task, t);
                    due.insert(key, t);
                }
                None => {
                    due.remove(&key);
                }
            }
        }
        let next = due.values().min().copied();
        let wait = next
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_millis(250));
        std::thread::sleep(wait);
    }
}
