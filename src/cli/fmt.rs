//! Small text formatting helpers shared by the verbs.

/// Bytes in binary units, e.g. "1.5 GiB".
pub use repo::timespec::format_size as bytes;

/// Prints a value as pretty JSON on stdout.
/// A moment in local time, to the minute.
pub fn local_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    mark_printed();
    Ok(())
}

/// Whether the command printed JSON on stdout (then a failure adds no error object, which
/// would turn one document into two).
static PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes that JSON went to stdout.
pub fn mark_printed() {
    PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// See [`PRINTED`].
pub fn printed() -> bool {
    PRINTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Formats rows as left-aligned columns with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|s| s.to_string()).collect());
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)));
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.clone()));
    }
    out
}

/// Parses "500GiB", "2 TB", "10m", "4096" (see [`repo::timespec::parse_size`]).
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    Ok(repo::timespec::parse_size(s)?)
}
