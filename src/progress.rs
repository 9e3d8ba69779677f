//! Progress counters shared by pipeline stages, and a terminal display for them.
//!
//! Stages only bump atomics; one display thread renders them, so progress costs the hot
//! path nothing but a relaxed add.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Counters updated by a running operation.
#[derive(Default)]
pub struct Progress {
    /// Items (files, blobs…) done.
    pub items: AtomicU64,
    /// Bytes done.
    pub bytes: AtomicU64,
    /// Items expected (may grow while a scan is still running).
    pub total_items: AtomicU64,
    /// Bytes expected.
    pub total_bytes: AtomicU64,
    /// Set when the totals are final.
    pub totals_final: AtomicBool,
}

impl Progress {
    /// Adds finished work.
    pub fn done(&self, items: u64, bytes: u64) {
        self.items.fetch_add(items, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

/// A running terminal display; stops and clears itself on drop.
pub struct Display {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    /// Starts rendering `p` on stderr with `verb` (e.g. "backing up"), if `enabled`.
    pub fn start(p: Arc<Progress>, verb: &'static str, enabled: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled {
            return Self { stop, thread: None };
        }
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} {msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            while !stop2.load(Relaxed) {
                let total = p.total_bytes.load(Relaxed);
                let done = p.bytes.load(Relaxed);
                bar.set_length(total.max(done));
                bar.set_position(done);
                let items = p.items.load(Relaxed);
                let titems = p.total_items.load(Relaxed);
                let more = if p.totals_final.load(Relaxed) {
                    ""
                } else {
                    "+"
                };
                bar.set_message(format!("{verb} {items}/{titems}{more} files"));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
