//! The observer of a job's verb: phases become live progress, messages and events the
//! job's message list (the newest [`KEEP_MESSAGES`]).

use std::sync::Arc;

use chrono::Utc;

use super::{Jobs, MessageView, KEEP_MESSAGES};
use crate::ops::context::{Event, Message, Observer, Phase};
use crate::progress::Progress;

/// Feeds a verb's events into its job.
pub(super) struct JobObserver {
    pub(super) jobs: Arc<Jobs>,
    pub(super) id: String,
}

impl JobObserver {
    fn push(&self, level: &str, subject: Option<String>, text: String) {
        tracing::debug!(job = %self.id, level, "{text}");
        self.jobs.update(&self.id, |j| {
            if j.messages.len() == KEEP_MESSAGES {
                j.messages.pop_front();
            }
            j.messages.push_back(MessageView {
                time: Utc::now(),
                level: level.to_string(),
                subject,
                text,
            });
        });
    }
}

impl Observer for JobObserver {
    fn phase(&self, phase: Phase, progress: &Arc<Progress>) {
        let p = progress.clone();
        self.jobs.update(&self.id, |j| j.phase = Some((phase, p)));
    }

    fn message(&self, m: &Message) {
        let level = serde_json::to_value(m.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.push(&level, m.subject.clone(), m.text.clone());
    }

    fn event(&self, e: &Event) {
        let text = serde_json::to_string(e).unwrap_or_default();
        self.push("info", None, text);
    }
}
