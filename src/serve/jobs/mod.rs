//! Jobs: every operation the service runs for an API call or the scheduler. A job has an
//! id (the operation-log id its record will carry), a state, live progress (the verb's
//! observer events), its messages, and in the end a report or an error. Jobs run on
//! their own threads, at most `max` at once (the rest wait, queued), so a client that
//! disconnects changes nothing; `cancel` sets the verb's cancellation token.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::problem::Problem;

mod observer;
use crate::ops::context::{CancelToken, Ctx, Phase};
use crate::progress::Progress;
use observer::JobObserver;

/// Finished jobs kept in memory; older ones are in the operation log.
const KEEP_FINISHED: usize = 500;
/// Messages kept per job.
const KEEP_MESSAGES: usize = 200;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a free slot.
    Queued,
    Running,
    /// Finished, nothing to report.
    Ok,
    /// Finished, with something to look at.
    Warnings,
    Failed,
    Cancelled,
}

impl JobState {
    /// Whether the job has ended.
    pub fn done(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }

    /// As in operation-log records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Ok => "ok",
            JobState::Warnings => "warnings",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// Counters of the running phase.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressView {
    pub phase: String,
    pub items: u64,
    pub bytes: u64,
    pub total_items: u64,
    pub total_bytes: u64,
    /// Whether the totals are final.
    pub totals_final: bool,
    /// What the items are: files, packs, documents…
    pub unit: String,
}

/// A message the verb gave.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub time: DateTime<Utc>,
    /// info, note or warning.
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
}

/// A job as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// Also the id of its operation-log record.
    pub id: String,
    /// run, snapshot, verify, restore, forget.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    pub repository: String,
    /// The token's name, or `scheduler`.
    pub requested_by: String,
    pub state: JobState,
    pub created: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressView>,
    pub messages: Vec<MessageView>,
    /// The verb's report once done (its `--json` output).
    pub report: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a job asks for.
pub struct JobSpec {
    pub kind: &'static str,
    pub plan: Option<String>,
    pub repository: String,
    pub requested_by: String,
}

/// How a job ended.
pub struct Outcome {
    pub state: JobState,
    pub report: serde_json::Value,
    pub error: Option<String>,
}

impl Outcome {
    /// A verb's result: its report, or its error (cancelled when it was).
    pub fn of<T: Serialize>(r: crate::Result<T>, warnings: impl Fn(&T) -> bool) -> Self {
        match r {
            Ok(rep) => Outcome {
                state: if warnings(&rep) {
                    JobState::Warnings
                } else {
                    JobState::Ok
                },
                report: serde_json::to_value(&rep).unwrap_or_default(),
                error: None,
            },
            Err(crate::Error::Cancelled(_)) => Outcome {
                state: JobState::Cancelled,
                report: serde_json::Value::Null,
                error: Some("cancelled".into()),
            },
            Err(e) => Outcome {
                state: JobState::Failed,
                report: serde_json::Value::Null,
                error: Some(e.to_string()),
            },
        }
    }
}

/// The work of a job: runs on the job's thread with its context and id.
pub type Work = Box<dyn FnOnce(&Ctx, &str) -> Outcome + Send + 'static>;

pub(super) struct Job {
    view: JobView,
    cancel: CancelToken,
    pub(super) phase: Option<(Phase, Arc<Progress>)>,
    pub(super) messages: VecDeque<MessageView>,
}

impl Job {
    fn view(&self) -> JobView {
        let mut v = self.view.clone();
        v.progress = self
            .phase
            .as_ref()
            .filter(|_| !v.state.done())
            .map(|(ph, p)| {
                let c = p.counts();
                ProgressView {
                    phase: ph.verb().to_string(),
                    items: c.items,
                    bytes: c.bytes,
                    total_items: c.total_items,
                    total_bytes: c.total_bytes,
                    totals_final: c.totals_final,
                    unit: p.unit().to_string(),
                }
            });
        v.messages = self.messages.iter().cloned().collect();
        v
    }
}

#[derive(Default)]
struct Table {
    jobs: BTreeMap<String, Job>,
    /// Queued jobs in submission order: they take free slots first come, first served.
    waiting: VecDeque<String>,
    running: usize,
    threads: Vec<JoinHandle<()>>,
}

/// Called when a job ends (metrics).
pub type OnFinish = Box<dyn Fn(&JobView) + Send + Sync>;

/// Every job of this service.
pub struct Jobs {
    table: Mutex<Table>,
    slots: Condvar,
    max: usize,
    closed: AtomicBool,
    on_finish: OnFinish,
}

impl Jobs {
    /// Runs at most `max` jobs at once.
    pub fn new(max: usize, on_finish: OnFinish) -> Arc<Self> {
        Arc::new(Self {
            table: Mutex::new(Table::default()),
            slots: Condvar::new(),
            max: max.max(1),
            closed: AtomicBool::new(false),
            on_finish,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `work`. A plan's task (backup run, check, prune) already queued or running
    /// is a conflict: one never runs twice at once.
    pub fn submit(self: &Arc<Self>, spec: JobSpec, work: Work) -> Result<JobView, Problem> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Problem::unavailable("the service is shutting down"));
        }
        let mut t = self.lock();
        if let Some(plan) = &spec.plan {
            if let Some(j) = t.jobs.values().find(|j| {
                j.view.plan.as_ref() == Some(plan)
                    && j.view.kind == spec.kind
                    && !j.view.state.done()
            }) {
                return Err(Problem::conflict(format!(
                    "plan {plan:?}: its {} is already {} as job {}",
                    spec.kind,
                    j.view.state.as_str(),
                    j.view.id
                )));
            }
        }
        let id = crate::journal::operation_id();
        let cancel = CancelToken::new();
        let job = Job {
            view: JobView {
                id: id.clone(),
                kind: spec.kind.to_string(),
                plan: spec.plan,
                repository: spec.repository,
                requested_by: spec.requested_by,
                state: JobState::Queued,
                created: Utc::now(),
                started: None,
                finished: None,
                progress: None,
                messages: Vec::new(),
                report: serde_json::Value::Null,
                error: None,
            },
            cancel: cancel.clone(),
            phase: None,
            messages: VecDeque::new(),
        };
        let view = job.view();
        t.jobs.insert(id.clone(), job);
        t.waiting.push_back(id.clone());
        t.threads.retain(|h| !h.is_finished());
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("job-{}", &id[id.len() - 6..]))
            .spawn(move || me.work(id, cancel, work));
        let handle = match spawned {
            Ok(h) => h,
            Err(e) => {
                // Not left queued: it would hold up every job behind it.
                t.jobs.remove(&view.id);
                t.waiting.retain(|w| *w != view.id);
                return Err(Problem::unavailable(format!(
                    "cannot start a job thread: {e}"
                )));
            }
        };
        t.threads.push(handle);
        Ok(view)
    }

    /// A job's thread: wait for a slot, run, record the end.
    fn work(self: Arc<Self>, id: String, cancel: CancelToken, work: Work) {
        {
            let mut t = self.lock();
            while (t.running >= self.max || t.waiting.front() != Some(&id))
                && !cancel.is_cancelled()
            {
                t = self
                    .slots
                    .wait_timeout(t, Duration::from_millis(500))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            t.waiting.retain(|w| *w != id);
            if cancel.is_cancelled() {
                drop(t);
                return self.end(
                    &id,
                    false,
                    Outcome::of::<()>(Err(crate::Error::Cancelled(String::new())), |_| false),
                );
            }
            t.running += 1;
            if let Some(j) = t.jobs.get_mut(&id) {
                j.view.state = JobState::Running;
                j.view.started = Some(Utc::now());
            }
        }
        // The next in line may take another free slot.
        self.slots.notify_all();
        tracing::info!(job = %id, "job started");
        let observer = Arc::new(JobObserver {
            jobs: self.clone(),
            id: id.clone(),
        });
        let ctx = Ctx::new(observer, cancel);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&ctx, &id)))
            .unwrap_or_else(|_| Outcome {
                state: JobState::Failed,
                report: serde_json::Value::Null,
                error: Some("internal error (the job panicked; see the service log)".into()),
            });
        self.end(&id, true, out);
    }

    fn end(&self, id: &str, ran: bool, out: Outcome) {
        let view = {
            let mut t = self.lock();
            if ran {
                t.running -= 1;
            }
            let Some(j) = t.jobs.get_mut(id) else { return };
            j.view.state = out.state;
            j.view.report = out.report;
            j.view.error = out.error;
            j.view.finished = Some(Utc::now());
            let v = j.view();
            let done: Vec<String> = t
                .jobs
                .iter()
                .filter(|(_, j)| j.view.state.done())
                .map(|(k, _)| k.clone())
                .collect();
            for k in done.iter().take(done.len().saturating_sub(KEEP_FINISHED)) {
                t.jobs.remove(k);
            }
            v
        };
        self.slots.notify_all();
        tracing::info!(job = %id, kind = %view.kind, result = view.state.as_str(), error = view.error.as_deref().unwrap_or(""), "job ended");
        (self.on_finish)(&view);
    }

    /// The job `id`, if this service still has it.
    pub fn get(&self, id: &str) -> Option<JobView> {
        self.lock().jobs.get(id).map(Job::view)
    }

    /// Every job it has, newest first.
    pub fn list(&self) -> Vec<JobView> {
        self.lock().jobs.values().rev().map(Job::view).collect()
    }

    /// Asks the job to stop; `None` when there is no such job, `Some(false)` when it had
    /// already ended.
    pub fn cancel(&self, id: &str) -> Option<bool> {
        let t = self.lock();
        let j = t.jobs.get(id)?;
        if j.view.state.done() {
            return Some(false);
        }
        j.cancel.cancel();
        drop(t);
        self.slots.notify_all();
        Some(true)
    }

    /// Jobs queued and running.
    pub fn counts(&self) -> (usize, usize) {
        let t = self.lock();
        let queued = t
            .jobs
            .values()
            .filter(|j| j.view.state == JobState::Queued)
            .count();
        (queued, t.running)
    }

    /// Whether no new jobs are taken.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Takes no new jobs from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Takes no new jobs, cancels the queued ones, lets the running ones finish for up to
    /// `grace`, cancels what is left and waits for every job thread.
    pub fn shutdown(&self, grace: Duration) {
        self.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + grace;
        {
            let t = self.lock();
            for j in t.jobs.values().filter(|j| j.view.state == JobState::Queued) {
                j.cancel.cancel();
            }
        }
        self.slots.notify_all();
        while self.counts().1 > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let threads = {
            let mut t = self.lock();
            for j in t.jobs.values().filter(|j| !j.view.state.done()) {
                tracing::warn!(job = %j.view.id, "cancelling: the grace period is over");
                j.cancel.cancel();
            }
            std::mem::take(&mut t.threads)
        };
        self.slots.notify_all();
        for h in threads {
            let _ = h.join();
        }
    }

    pub(super) fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.lock().jobs.get_mut(id) {
            f(j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(plan: Option<&str>) -> JobSpec {
        JobSpec {
            kind: "run",
            plan: plan.map(str::to_string),
            repository: "r".into(),
            requested_by: "t".into(),
        }
    }

    fn wait_done(j: &Jobs, id: &str) -> JobView {
        for _ in 0..200 {
            let v = j.get(id).unwrap();
            if v.state.done() {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("job {id} did not end");
    }

    #[test]
    fn queued_jobs_start_in_submission_order() {
        let jobs = Jobs::new(1, Box::new(|_| {}));
        let order = Arc::new(Mutex::new(Vec::new()));
        let gate: Work = Box::new(|ctx, _| {
            while !ctx.cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Outcome::of::<()>(ctx.check(), |_| false)
        });
        let first = jobs.submit(spec(None), gate).unwrap();
        let mut ids = Vec::new();
        for n in 0..6 {
            let order = order.clone();
            let work: Work = Box::new(move |_, _| {
                order.lock().unwrap().push(n);
                Outcome::of(Ok(n), |_| false)
            });
            ids.push(jobs.submit(spec(None), work).unwrap().id);
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(jobs.cancel(&first.id), Some(true));
        for id in &ids {
            assert_eq!(wait_done(&jobs, id).state, JobState::Ok);
        }
        assert_eq!(*order.lock().unwrap(), (0..6).collect::<Vec<_>>());
        jobs.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn one_slot_one_plan_at_a_time_and_cancel() {
        let jobs = Jobs::new(1, Box::new(|_| {}));
        let slow: Work = Box::new(|ctx, _| {
            while !ctx.cancelled() {
                std::thread::sleep(Duration::from_millis(10));
            }
            Outcome::of::<()>(ctx.check(), |_| false)
        });
        let a = jobs.submit(spec(Some("p")), slow).unwrap();
        let again: Work = Box::new(|_, _| Outcome::of(Ok(1), |_| false));
        assert!(
            jobs.submit(spec(Some("p")), again).is_err(),
            "same plan twice"
        );
        let b = jobs
            .submit(spec(None), Box::new(|_, _| Outcome::of(Ok(2), |_| false)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(jobs.get(&b.id).unwrap().state, JobState::Queued, "one slot");
        assert_eq!(jobs.cancel(&a.id), Some(true));
        assert_eq!(wait_done(&jobs, &a.id).state, JobState::Cancelled);
        let b = wait_done(&jobs, &b.id);
        assert_eq!(
            (b.state, b.report.clone()),
            (JobState::Ok, serde_json::json!(2))
        );
        assert_eq!(jobs.cancel(&b.id), Some(false));
        jobs.shutdown(Duration::from_secs(1));
        assert!(jobs
            .submit(spec(None), Box::new(|_, _| Outcome::of(Ok(3), |_| false)))
            .is_err());
    }
}
