//! What every verb gets besides its request: someone to tell how it goes (an
//! [`Observer`]: phases, counters, warnings) and a way to be stopped ([`CancelToken`]).
//!
//! Counters are atomics ([`Progress`]) the verb bumps on its hot paths and an observer
//! reads whenever it likes (a terminal display every 100 ms, a service when asked), so
//! observing costs the work nothing. Cancellation is checked between files, packs and
//! batches; a cancelled verb commits nothing half done and returns [`Error::Cancelled`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::mongo::oplog::slice::{Gap, Slice};
use crate::progress::Progress;
use crate::snapshot::ClusterTime;

/// What a running verb is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading files or collections and storing what is new.
    BackingUp,
    /// Writing files or collections back.
    Restoring,
    /// Replaying oplog entries.
    Replaying,
    /// Verifying packs, trees and slices.
    Checking,
    /// Marking, repacking and deleting.
    Pruning,
    /// Copying snapshots between repositories.
    Copying,
    /// Comparing live data with a snapshot.
    Scanning,
    /// Repairing the index or snapshots.
    Repairing,
}

impl Phase {
    /// A verb for a progress line ("backing up").
    pub fn verb(self) -> &'static str {
        match self {
            Phase::BackingUp => "backing up",
            Phase::Restoring => "restoring",
            Phase::Replaying => "replaying",
            Phase::Checking => "checking",
            Phase::Pruning => "pruning",
            Phase::Copying => "copying",
            Phase::Scanning => "scanning",
            Phase::Repairing => "repairing",
        }
    }
}

/// How much a message matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// What the verb is doing ("restoring snapshot 3fa2… into /srv").
    Info,
    /// Worth knowing, nothing wrong ("app.system.views is managed by the server").
    Note,
    /// Something went wrong with one item; the verb goes on (a file it could not read).
    Warning,
}

/// Something a running verb wants known that does not stop it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    /// How much it matters.
    pub level: Level,
    /// What it is about (a path, a namespace), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// What happened.
    pub text: String,
}

/// Something a long-running verb did, shown as it happens (`mongodb follow` runs until
/// stopped, so its report would come too late).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// Oplog capture starts after this moment (`None`: from the newest entry now, as no
    /// snapshot or slice of the source exists yet).
    FollowResumed {
        /// Where reading resumes.
        after: Option<ClusterTime>,
    },
    /// A slice of oplog was sealed into the repository.
    SliceSealed {
        /// The slice.
        slice: Box<Slice>,
    },
    /// Oplog entries were lost: the oplog rolled over before they were read.
    OplogGap {
        /// The lost range.
        gap: Gap,
    },
    /// The oplog was read up to the server's present: what the server said of itself.
    Polled {
        /// The server's clock when the read began.
        server_time: Option<chrono::DateTime<chrono::Utc>>,
        /// The newest write the server had committed then (the oplog's head).
        head: Option<ClusterTime>,
        /// Everything up to here has been read.
        read_until: ClusterTime,
    },
    /// Reading failed (server down, network); trying again after a pause.
    Retrying {
        /// What failed.
        error: String,
        /// Seconds until the next attempt.
        in_secs: u64,
    },
}

/// Receives a running verb's events. Every method has a do-nothing default.
pub trait Observer: Send + Sync {
    /// A phase starts; `progress` holds its counters from now on.
    fn phase(&self, _phase: Phase, _progress: &Arc<Progress>) {}
    /// A phase ended.
    fn phase_done(&self, _phase: Phase) {}
    /// Something worth telling (see [`Level`]).
    fn message(&self, _message: &Message) {}
    /// Something a long-running verb did.
    fn event(&self, _event: &Event) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}

/// A flag a caller sets to stop a running verb (from another thread, or a signal
/// handler through [`CancelToken::flag`]).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token nobody has cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the verb to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The underlying flag (for signal handlers).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// The observer and the cancellation token of one run of a verb.
#[derive(Clone)]
pub struct Ctx {
    observer: Arc<dyn Observer>,
    cancel: CancelToken,
}

impl Default for Ctx {
    fn default() -> Self {
        Self::new(Arc::new(Silent), CancelToken::new())
    }
}

impl Ctx {
    /// A context reporting to `observer`, stopped by `cancel`.
    pub fn new(observer: Arc<dyn Observer>, cancel: CancelToken) -> Self {
        Self { observer, cancel }
    }

    /// Starts a phase: fresh counters, announced to the observer.
    pub fn phase(&self, phase: Phase) -> Arc<Progress> {
        let p = Arc::new(Progress::default());
        self.observer.phase(phase, &p);
        p
    }

    /// Ends a phase.
    pub fn phase_done(&self, phase: Phase) {
        self.observer.phase_done(phase);
    }

    /// Reports a problem with one item.
    pub fn warn(&self, subject: Option<String>, text: impl Into<String>) {
        self.say(Level::Warning, subject, text);
    }

    /// Tells something worth knowing.
    pub fn note(&self, text: impl Into<String>) {
        self.say(Level::Note, None, text);
    }

    /// Says what the verb is doing.
    pub fn info(&self, text: impl Into<String>) {
        self.say(Level::Info, None, text);
    }

    fn say(&self, level: Level, subject: Option<String>, text: impl Into<String>) {
        self.observer.message(&Message {
            level,
            subject,
            text: text.into(),
        });
    }

    /// Reports an event of a long-running verb.
    pub fn event(&self, event: Event) {
        self.observer.event(&event);
    }

    /// Fails with [`Error::Cancelled`] once cancellation was asked for.
    pub fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Cancelled(String::new()))
        } else {
            Ok(())
        }
    }

    /// Whether cancellation was asked for.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The token (to hand to work on other threads).
    pub fn token(&self) -> &CancelToken {
        &self.cancel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl Observer for Record {
        fn phase(&self, phase: Phase, _: &Arc<Progress>) {
            self.0.lock().unwrap().push(phase.verb().into());
        }
        fn message(&self, m: &Message) {
            self.0.lock().unwrap().push(m.text.clone());
        }
    }

    #[test]
    fn events_reach_the_observer_and_cancellation_is_seen() {
        let rec = Arc::new(Record::default());
        let ctx = Ctx::new(rec.clone(), CancelToken::new());
        ctx.phase(Phase::Checking);
        ctx.warn(Some("/x".into()), "could not read");
        assert!(ctx.check().is_ok());
        ctx.token().cancel();
        assert!(matches!(ctx.check(), Err(Error::Cancelled(_))));
        assert_eq!(*rec.0.lock().unwrap(), vec!["checking", "could not read"]);
    }
}
