//! Point-in-time capture: for each plan with `follow-oplog`, a supervisor thread runs the
//! `mongodb follow` verb against the plan's MongoDB server into the plan's repository,
//! sealing a slice every `[service] follow-seal`. A follower that stops on an error is
//! restarted with backoff (1 s doubling to 5 min); stopping, an oplog gap (the oplog
//! rolled over past the capture) and capture lagging more than `follow-lag-alert` behind
//! the clock alert the plan's notification targets. On shutdown each follower seals what
//! it read and ends; every run of a follower leaves a `follow` operation-log record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Service;
use crate::journal::{Record, Sink};
use crate::ops::context::{CancelToken, Ctx, Event as VerbEvent, Observer};
use crate::ops::mongodb::{follow, FollowRequest};
use crate::plan::notify::{self, Event, Notice};

/// Longest pause before restarting a follower.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One follower as the API and metrics show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FollowView {
    pub plan: String,
    /// starting, running, retrying (the server cannot be read; the verb tries again) or
    /// restarting (the verb stopped on an error; the supervisor starts it again).
    pub state: String,
    /// Restorable up to here: the server clock the newest sealed slice vouches for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_until: Option<DateTime<Utc>>,
    pub slices: u64,
    /// Oplog ranges lost since the service started.
    pub gaps: u64,
    pub restarts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the state last changed.
    pub since: DateTime<Utc>,
    /// The server's clock at the follower's last read of the oplog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_time: Option<DateTime<Utc>>,
    /// Seconds of oplog between the server's newest write and what has been read, at
    /// the last read (server timestamps: no clock skew).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind_head_secs: Option<u64>,
    /// When (this host's clock) the last read happened.
    #[serde(skip)]
    polled_at: Option<std::time::Instant>,
}

impl FollowView {
    fn new(plan: &str) -> Self {
        Self {
            plan: plan.to_string(),
            state: "starting".into(),
            covered_until: None,
            slices: 0,
            gaps: 0,
            restarts: 0,
            last_error: None,
            since: Utc::now(),
            server_time: None,
            behind_head_secs: None,
            polled_at: None,
        }
    }

    /// Seconds the restorable end is behind the server's present (`None` before the
    /// first slice). The server's present is its clock at the last read plus the time
    /// since on this host, so a skew between the two clocks does not count as lag;
    /// before any read, this host's clock stands in.
    pub fn lag_secs(&self) -> Option<f64> {
        let covered = self.covered_until?;
        let present = match (self.server_time, self.polled_at) {
            (Some(t), Some(at)) => t + chrono::Duration::from_std(at.elapsed()).unwrap_or_default(),
            _ => Utc::now(),
        };
        Some(((present - covered).num_milliseconds() as f64 / 1000.0).max(0.0))
    }
}

type States = Arc<Mutex<BTreeMap<String, FollowView>>>;

/// The followers of this service.
#[derive(Default)]
pub struct Followers {
    states: States,
    cancels: Mutex<Vec<CancelToken>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn update(states: &States, plan: &str, f: impl FnOnce(&mut FollowView)) {
    if let Some(v) = states
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(plan)
    {
        f(v);
    }
}

impl Followers {
    /// Every follower, by plan.
    pub fn views(&self) -> Vec<FollowView> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Asks every follower to seal and stop, and waits for them.
    pub fn stop(&self) {
        for c in self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            c.cancel();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Starts a supervisor for each plan with `follow-oplog`.
pub fn start(svc: &Arc<Service>) {
    for plan in svc.config.plans.values().filter(|p| p.follow_oplog) {
        let cancel = CancelToken::new();
        svc.followers
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plan.name.clone(), FollowView::new(&plan.name));
        let (s, name, c) = (svc.clone(), plan.name.clone(), cancel.clone());
        match std::thread::Builder::new()
            .name(format!("follow-{name}"))
            .spawn(move || supervise(&s, &name, &c))
        {
            Ok(t) => {
                svc.followers
                    .cancels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(cancel);
                svc.followers
                    .threads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(t);
            }
            Err(e) => tracing::error!(plan = %plan.name, "cannot start the oplog follower: {e}"),
        }
    }
}

/// Tells the plan's notification targets about the follower (a `failure` event).
fn alert(svc: &Service, plan: &str, status: &str, what: String) {
    tracing::warn!(plan, "{what}");
    let Ok(p) = svc.config.plan(plan) else { return };
    let host = p.host.clone().unwrap_or_else(crate::sysinfo::hostname);
    let notice = Notice {
        task: "follow".into(),
        event: Event::Failure,
        plan: plan.to_string(),
        host: host.clone(),
        operation: String::new(),
        status: status.to_string(),
        error: Some(what.clone()),
        snapshot: None,
        seconds: 0.0,
        bytes_added: 0,
        message: format!("plan {plan} on {host}: {what}"),
    };
    for name in &p.notify {
        if let Some(t) = svc.config.notify.get(name) {
            for d in notify::deliver(t, &notice).into_iter().filter(|d| !d.ok) {
                tracing::warn!(plan, target = %d.target, "alert not delivered: {}", d.error.unwrap_or_default());
            }
        }
    }
}

/// Feeds the verb's events into the follower's view, and alerts on gaps.
struct Watch {
    svc: Arc<Service>,
    plan: String,
}

impl Observer for Watch {
    fn event(&self, e: &VerbEvent) {
        let states = &self.svc.followers.states;
        match e {
            VerbEvent::FollowResumed { .. } => update(states, &self.plan, |v| {
                v.state = "running".into();
                v.since = Utc::now();
            }),
            VerbEvent::SliceSealed { slice } => {
                let until = slice
                    .until_wall
                    .or_else(|| DateTime::from_timestamp(slice.until.t.into(), 0));
                update(states, &self.plan, |v| {
                    if v.state != "running" {
                        v.since = Utc::now();
                    }
                    v.state = "running".into();
                    v.slices += 1;
                    v.covered_until = until.max(v.covered_until);
                });
            }
            VerbEvent::OplogGap { gap } => {
                update(states, &self.plan, |v| v.gaps += 1);
                alert(&self.svc, &self.plan, "oplog-gap", format!("the oplog rolled over past the capture: entries from {} to {} are lost; take a snapshot to restart point-in-time coverage", gap.from, gap.to));
            }
            VerbEvent::Polled {
                server_time,
                head,
                read_until,
            } => update(states, &self.plan, |v| {
                v.polled_at = Some(Instant::now());
                v.server_time = *server_time;
                v.behind_head_secs = head.map(|h| u64::from(h.t.saturating_sub(read_until.t)));
                if v.state == "retrying" {
                    v.state = "running".into();
                    v.since = Utc::now();
                    v.last_error = None;
                }
            }),
            VerbEvent::Retrying { error, in_secs } => update(states, &self.plan, |v| {
                if v.state != "retrying" {
                    v.since = Utc::now();
                }
                v.state = "retrying".into();
                v.last_error = Some(format!("{error} (again in {in_secs}s)"));
            }),
        }
    }
}

/// One follower's life: run the verb, record each run, restart it after errors.
fn supervise(svc: &Arc<Service>, plan: &str, cancel: &CancelToken) {
    let Ok(p) = svc.config.plan(plan) else { return };
    let Some(m) = p.mongodb.clone() else { return };
    let mut backoff = Duration::from_secs(1);
    while !cancel.is_cancelled() {
        let started = Utc::now();
        let t = Instant::now();
        let ctx = Ctx::new(
            Arc::new(Watch {
                svc: svc.clone(),
                plan: plan.to_string(),
            }),
            cancel.clone(),
        );
        let mut sink = None;
        let result = svc.repos.fresh(&p.repository).and_then(|repo| {
            sink = Some(Sink::of(&repo));
            let mut req = FollowRequest::new(m.uri.read()?);
            req.dbs = m.databases.clone();
            req.seal_interval_ms = svc.config.service.follow_seal_secs * 1000;
            follow(&repo, &req, &ctx)
        });
        let mut rec = Record::start(
            "follow",
            &["repo-serve".into(), "follow".into(), plan.into()],
        );
        rec.plan = Some(plan.to_string());
        rec.started = started;
        let (res, report, error) = match &result {
            Ok(r) => ("ok", serde_json::to_value(r).unwrap_or_default(), None),
            Err(e) => ("failed", serde_json::Value::Null, Some(e.to_string())),
        };
        rec.finish(res, report, error.clone());
        svc.record(&p.repository, sink.as_ref(), &rec);
        if cancel.is_cancelled() {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            backoff = Duration::from_secs(1);
        }
        let why = error.unwrap_or_else(|| "it ended".into());
        update(&svc.followers.states, plan, |v| {
            v.state = "restarting".into();
            v.restarts += 1;
            v.last_error = Some(why.clone());
            v.since = Utc::now();
        });
        alert(
            svc,
            plan,
            "follow-stopped",
            format!(
                "oplog capture stopped ({why}); restarting in {}s",
                backoff.as_secs()
            ),
        );
        let until = Instant::now() + backoff;
        while Instant::now() < until && !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(100));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    update(&svc.followers.states, plan, |v| {
        v.state = "stopped".into();
        v.since = Utc::now();
    });
}

/// Alerts once per stretch when a follower has been retrying, or its capture has not
/// advanced, for longer than `follow-lag-alert`; called by the scheduler.
pub fn check_lag(svc: &Service, alerted: &mut BTreeMap<String, bool>) {
    let limit = svc.config.service.follow_lag_alert_secs as f64;
    for v in svc.followers.views() {
        let stuck = match v.state.as_str() {
            "retrying" | "restarting" => (Utc::now() - v.since).num_seconds() as f64 > limit,
            _ => v.lag_secs().is_some_and(|l| l > limit),
        };
        let was = alerted.insert(v.plan.clone(), stuck).unwrap_or(false);
        if stuck && !was {
            let what = format!(
                "oplog capture is more than {}s behind ({}{})",
                limit,
                v.state,
                v.last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            alert(svc, &v.plan, "follow-lagging", what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_measured_on_the_servers_clock() {
        let mut v = FollowView::new("p");
        assert_eq!(v.lag_secs(), None, "nothing sealed yet");
        // The server's clock runs an hour behind this host's.
        let server_now = Utc::now() - chrono::Duration::hours(1);
        v.covered_until = Some(server_now - chrono::Duration::seconds(2));
        let no_reading = v.lag_secs().unwrap();
        assert!(
            no_reading > 3600.0,
            "before a reading, this host's clock: {no_reading}"
        );
        v.server_time = Some(server_now);
        v.polled_at = Some(Instant::now());
        let lag = v.lag_secs().unwrap();
        assert!((1.9..3.0).contains(&lag), "{lag}");
    }
}
