//! Repository statistics in the service: computed on a background thread per repository
//! (at start and after changes, paced so a large repository costs at most a tenth of a
//! core), kept for the metrics and the dashboard, and a size-over-time series in
//! `<state>/storage/<repository>.jsonl` (one point when the size or the snapshot count
//! changed, or an hour passed; at most [`MAX_POINTS`] kept).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Service;
use crate::ops::context::{Ctx, Silent};
use crate::ops::stats::RepoStats;

/// Points kept in a repository's size history.
const MAX_POINTS: usize = 2000;

/// One point of a repository's size history.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SizePoint {
    time: DateTime<Utc>,
    size: u64,
    snapshots: usize,
}

impl Service {
    /// Refreshes repository `name`'s statistics in the metrics on a background thread:
    /// at start, and after each job that changed it. One walk per repository at a time;
    /// a change during a walk asks for one more after it. Between two walks the thread
    /// waits ten times as long as the last one took (at least two seconds), so the
    /// statistics of a large repository take at most a tenth of a core.
    pub fn refresh_stats(self: &Arc<Self>, name: &str) {
        if self.stats_stop.is_cancelled() {
            return;
        }
        let mut busy = self.stats_busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(again) = busy.get_mut(name) {
            *again = true;
            return;
        }
        busy.insert(name.to_string(), false);
        drop(busy);
        let (svc, owned) = (self.clone(), name.to_string());
        let spawned = std::thread::Builder::new()
            .name("stats".into())
            .spawn(move || svc.stats_loop(&owned));
        match spawned {
            Ok(t) => self
                .stats_threads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(t),
            Err(_) => {
                self.stats_busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(name);
            }
        }
    }

    /// Stops the statistics threads and waits for them (at shutdown, before the process
    /// exits). A walk stops at its next check; the pause between walks is cut short.
    pub(super) fn stop_stats(&self) {
        self.stats_stop.cancel();
        loop {
            let threads =
                std::mem::take(&mut *self.stats_threads.lock().unwrap_or_else(|p| p.into_inner()));
            if threads.is_empty() {
                return;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }

    fn stats_loop(&self, name: &str) {
        loop {
            let started = std::time::Instant::now();
            let req = crate::ops::stats::StatsRequest::default();
            let ctx = Ctx::new(Arc::new(Silent), self.stats_stop.clone());
            match self
                .repos
                .get(name)
                .and_then(|r| crate::ops::stats::run(&r, &req, &ctx))
            {
                Ok(s) => self.keep_stats(name, &s),
                Err(_) if self.stats_stop.is_cancelled() => {}
                Err(e) => tracing::warn!(repository = %name, "statistics: {e}"),
            }
            let pause = (started.elapsed() * 10).max(Duration::from_secs(2));
            let until = std::time::Instant::now() + pause;
            while !self.stats_stop.is_cancelled() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
            let mut busy = self.stats_busy.lock().unwrap_or_else(|p| p.into_inner());
            match busy.get_mut(name) {
                Some(again) if *again && !self.stats_stop.is_cancelled() => *again = false,
                _ => {
                    busy.remove(name);
                    return;
                }
            }
        }
    }

    /// Keeps `s` as repository `name`'s latest statistics: metrics, the dashboard, and
    /// the size history.
    pub(super) fn keep_stats(&self, name: &str, s: &RepoStats) {
        self.metrics.repository(name, s);
        self.stats_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), (Utc::now(), s.clone()));
        if let Err(e) = self.add_size_point(name, s) {
            tracing::warn!(repository = %name, "size history: {e}");
        }
    }

    /// The latest statistics of repository `name`, and when they were computed.
    pub(super) fn cached_stats(&self, name: &str) -> Option<(DateTime<Utc>, RepoStats)> {
        self.stats_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn size_file(&self, name: &str) -> std::path::PathBuf {
        // Repository names are config keys; keep the file name plain whatever they hold.
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.state_root.join("storage").join(format!(
            "{safe}-{}.jsonl",
            &blake3::hash(name.as_bytes()).to_hex()[..8]
        ))
    }

    /// Repository `name`'s size over time, oldest first.
    pub(super) fn size_history(&self, name: &str) -> Vec<(DateTime<Utc>, u64)> {
        read_points(&self.size_file(name))
            .into_iter()
            .map(|p| (p.time, p.size))
            .collect()
    }

    fn add_size_point(&self, name: &str, s: &RepoStats) -> std::io::Result<()> {
        let path = self.size_file(name);
        let mut points = read_points(&path);
        let now = Utc::now();
        let changed = points.last().is_none_or(|l| {
            l.size != s.size_on_disk
                || l.snapshots != s.snapshots
                || now - l.time > chrono::Duration::hours(1)
        });
        if !changed {
            return Ok(());
        }
        points.push(SizePoint {
            time: now,
            size: s.size_on_disk,
            snapshots: s.snapshots,
        });
        let skip = points.len().saturating_sub(MAX_POINTS);
        let mut text = String::new();
        for p in &points[skip..] {
            text.push_str(&serde_json::to_string(p).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Write then rename: a crash leaves the old history, never half of one.
        let tmp = path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)
    }
}

fn read_points(path: &std::path::Path) -> Vec<SizePoint> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
