//! The terminal's view of a running verb: a progress bar per phase on stderr (when it is
//! a terminal and not `--quiet`/`--json`), or a line or a JSON event per interval for
//! logs (`--progress-interval`, `--json-progress`); messages on stderr, follow's events
//! as they happen, and Ctrl-C turned into cancellation.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use repo::ops::context::{CancelToken, Ctx, Event, Level, Message, Observer, Phase};
use repo::progress::Progress;

/// How a running phase is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing.
    None,
    /// A bar on the terminal.
    Bars,
    /// A text line on stderr this often (cron, systemd journals).
    Lines(Duration),
    /// A JSON object on stderr this often.
    Json(Duration),
}

/// Renders each phase's counters while the phase runs.
pub struct Terminal {
    mode: Mode,
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
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p) = (stop.clone(), progress.clone());
        let thread = match self.mode {
            Mode::None => return,
            Mode::Bars => std::thread::spawn(move || draw(&p, phase.verb(), &s)),
            Mode::Lines(every) => {
                std::thread::spawn(move || lines(&p, phase.verb(), &s, every, false))
            }
            Mode::Json(every) => {
                std::thread::spawn(move || lines(&p, phase.verb(), &s, every, true))
            }
        };
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
                    super::fmt::mark_printed();
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
        bar.set_message(format!(
            "{verb} {}/{}{more} {}",
            c.items,
            c.total_items,
            p.unit()
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// One progress report: text, or a JSON object.
fn report(p: &Progress, verb: &str, elapsed: Duration, json: bool, done: bool) -> String {
    let c = p.counts();
    if json {
        return serde_json::json!({
            "phase": verb, "items": c.items, "total_items": c.total_items, "unit": p.unit(),
            "bytes": c.bytes, "total_bytes": c.total_bytes, "totals_final": c.totals_final,
            "elapsed_secs": elapsed.as_secs_f64(), "done": done,
        })
        .to_string();
    }
    let pct = if c.totals_final && c.total_bytes > 0 {
        format!(" ({:.0}%)", c.bytes as f64 * 100.0 / c.total_bytes as f64)
    } else {
        String::new()
    };
    let more = if c.totals_final { "" } else { "+" };
    format!(
        "progress: {verb} {}/{}{more} {}, {}/{}{more}{pct}, {}s elapsed{}",
        c.items,
        c.total_items,
        p.unit(),
        super::fmt::bytes(c.bytes),
        super::fmt::bytes(c.total_bytes.max(c.bytes)),
        elapsed.as_secs(),
        if done { ", done" } else { "" }
    )
}

/// Prints a report every `every` while the phase runs, and one when it ends.
fn lines(p: &Progress, verb: &str, stop: &AtomicBool, every: Duration, json: bool) {
    let started = std::time::Instant::now();
    let mut next = started + every;
    while !stop.load(Relaxed) {
        if std::time::Instant::now() >= next {
            eprintln!("{}", report(p, verb, started.elapsed(), json, false));
            next += every;
        }
        std::thread::sleep(Duration::from_millis(50).min(every));
    }
    eprintln!("{}", report(p, verb, started.elapsed(), json, true));
}

/// The context a CLI command runs its verb with: the progress display (`mode`), messages
/// unless `quiet` (`json` prints follow's slices as JSON lines), and a token that
/// SIGINT/SIGTERM cancel (a second signal exits at once).
pub fn context(mode: Mode, quiet: bool, json: bool) -> Ctx {
    let cancel = CancelToken::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Once the flag is set, the next signal terminates without waiting.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, cancel.flag());
        let _ = signal_hook::flag::register(sig, cancel.flag());
    }
    let observer = Terminal {
        mode,
        quiet,
        json,
        running: Mutex::new(None),
    };
    Ctx::new(Arc::new(observer), cancel)
}
