//! Where the library's warnings go: stderr, one line each, as `warning: …`.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "{level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// How much the CLI logs, and where: `-v` (info), `-vv` (debug), `-vvv` (trace), or
/// `--log-level`; warnings and errors by default. Our own events go through at that level,
/// other crates' (HTTP, TLS, drivers) only at warnings, unless trace was asked for. To stderr
/// one plain line each, or with `--log-file` appended to that file with timestamps.
pub fn init(level: Level, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let others = if level > Level::DEBUG {
        level
    } else {
        Level::WARN.min(level)
    };
    let targets = Targets::new()
        .with_target("repo", level)
        .with_default(others);
    match file {
        None => {
            let _ = tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::stderr)
                .event_format(Plain)
                .finish()
                .with(targets)
                .try_init();
        }
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("--log-file {}: {e}", path.display()))?;
            let _ = tracing_subscriber::fmt()
                .with_max_level(level)
                .with_ansi(false)
                .with_writer(BoxMakeWriter::new(std::sync::Mutex::new(f)))
                .finish()
                .with(targets)
                .try_init();
        }
    }
    Ok(())
}

/// The level `-v` counts and `--log-level` ask for.
pub fn level(verbose: u8, asked: Option<&str>) -> anyhow::Result<Level> {
    if let Some(a) = asked {
        return a.parse::<Level>().map_err(|_| {
            anyhow::anyhow!("--log-level {a:?}: want error, warn, info, debug or trace")
        });
    }
    Ok(match verbose {
        0 => Level::WARN,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    })
}

/// The service's log: events at info and above on stderr, one line each or one JSON
/// object each (`--log-format json`).
pub fn init_service(json: bool) {
    let b = tracing_subscriber::fmt()
        .with_max_level(Level::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json {
        b.json().flatten_event(true).try_init()
    } else {
        b.try_init()
    };
}
