//! The terminal's view of a running verb: a progress bar per phase on stderr (when it is
//! a terminal and not `--quiet`/`--json`), messages on stderr, follow's events as they
//! happen, and Ctrl-C turned into cancellation.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use repo::ops::context::{CancelToken, Ctx, Event, Level, Message, Observer, Phase};
use repo::progress::Progress;

/// Renders each phase's counters as a bar while the phase runs.
pub struct Terminal {
    bars: bool,
    /// `--quiet`: no informational messages (stderr; `--json` output is on stdout).
    quiet: bool,
    json: bool,
    running: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl Terminal {
    fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, thread)) = running {
            stop.store(true, Relaxed);
            let _ = thread.join();
        }
    }
}

impl Observer for Terminal {
    fn phase(&self, phase: Phase, progress: &Arc<Progress>) {
        self.stop();
        if !self.bars {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p) = (stop.clone(), progress.clone());
        let thread = std::thread::spawn(move || draw(&p, phase.verb(), &s));
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop, thread));
    }

    fn phase_done(&self, _phase: Phase) {
        self.stop();
    }

    fn message(&self, m: &Message) {
        match m.level {
            // Reports list what was skipped; the bar is not interrupted for each item.
            Level::Warning => {}
            Level::Info | Level::Note if self.quiet => {}
            Level::Info => eprintln!("{}", m.text),
            Level::Note => eprintln!("note: {}", m.text),
        }
    }

    fn event(&self, e: &Event) {
        match e {
            Event::FollowResumed { after } if !self.quiet && !self.json => match after {
                Some(t) => eprintln!("following the oplog after {t}"),
                None => eprintln!(
                    "following the oplog from now (no snapshot or slice of this source yet: \
                     take a snapshot to have a base to restore from)"
                ),
            },
            Event::SliceSealed { slice } if self.json => {
                if let Ok(v) = serde_json::to_string(slice) {
                    println!("{v}");
                }
            }
            Event::SliceSealed { slice } if !self.quiet => println!(
                "sealed slice {}: {} entries, {} bytes, covers up to {}",
                slice.id.short(),
                slice.entries,
                slice.bytes,
                slice.until
            ),
            Event::OplogGap { gap } => eprintln!(
                "WARNING: oplog entries between {} and {} were lost (the oplog rolled over \
                 before they were read); moments in that range cannot be restored — raise the \
                 oplog size or keep `follow` running",
                gap.from, gap.to
            ),
            Event::Retrying { error, in_secs } => {
                eprintln!("WARNING: {error}; retrying in {in_secs} s (what was read is kept)")
            }
            _ => {}
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.stop();
    }
}

fn draw(p: &Progress, verb: &str, stop: &AtomicBool) {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} {msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    while !stop.load(Relaxed) {
        let c = p.counts();
        bar.set_length(c.total_bytes.max(c.bytes));
        bar.set_position(c.bytes);
        let more = if c.totals_final { "" } else { "+" };
        bar.set_message(format!("{verb} {}/{}{more}", c.items, c.total_items));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// The context a CLI command runs its verb with: the terminal display (bars when `bars`,
/// messages unless `quiet`; `json` prints follow's slices as JSON lines), and a token that
/// SIGINT/SIGTERM cancel (a second signal exits at once).
pub fn context(bars: bool, quiet: bool, json: bool) -> Ctx {
    let cancel = CancelToken::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Once the flag is set, the next signal terminates without waiting.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, cancel.flag());
        let _ = signal_hook::flag::register(sig, cancel.flag());
    }
    let observer = Terminal {
        bars,
        quiet,
        json,
        running: Mutex::new(None),
    };
    Ctx::new(Arc::new(observer), cancel)
}
