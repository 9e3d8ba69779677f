//! The `repo` binary: parse arguments, run, and map errors to a one-line message and exit code.

mod cli;

/// glibc's malloc raises its mmap threshold each time a large block is freed (pack
/// buffers, units, grown tables), up to 32 MiB, and then keeps up to twice that free in
/// each thread's heap: a snapshot of a million small files ended at 300 MB resident, a
/// third of it free memory. A fixed threshold keeps blocks of 4 MiB and more in their own
/// mappings, returned when freed, and the heaps trimmed (210 MB, same speed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "mallopt is a C call; it only changes allocator tuning"
)]
fn tune_allocator() {
    // SAFETY: called first thing in main, before any other thread exists; mallopt takes
    // plain integers and returns 0 on a value it refuses, which changes nothing.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

use clap::Parser;

/// The panic `print!` raises when stdout is a closed pipe (`repo ls … | head`).
fn is_closed_stdout(info: &std::panic::PanicHookInfo) -> bool {
    let msg = info
        .payload()
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| info.payload().downcast_ref::<&str>().copied())
        .unwrap_or("");
    msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe")
}

/// The outermost context, then the causes, each said once: a cause that an earlier
/// message already ends with ("reading x: Permission denied (os error 13)" then
/// "Permission denied (os error 13)") is not repeated.
fn one_line(chain: impl Iterator<Item = String>) -> String {
    let mut msg: Vec<String> = Vec::new();
    for c in chain {
        if !msg.iter().any(|m| m.ends_with(&c)) {
            msg.push(c);
        }
    }
    msg.join(": ")
}

fn main() {
    tune_allocator();
    // A reader that went away ends the command quietly, as for other Unix tools: the
    // panic unwinds (locks are released, nothing half-written is committed) and the
    // process exits 0 without a message.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_closed_stdout(info) {
            default_hook(info);
        }
    }));
    let json = std::sync::atomic::AtomicBool::new(false);
    let outcome = std::panic::catch_unwind(|| {
        let cli = cli::Cli::parse();
        json.store(cli.wants_json(), std::sync::atomic::Ordering::Relaxed);
        cli.init_log()?;
        cli::run(cli)
    });
    match outcome {
        Ok(Ok(code)) => std::process::exit(code),
        Ok(Err(e)) => {
            let message = one_line(e.chain().map(|c| c.to_string()));
            eprintln!("error: {message}");
            if json.load(std::sync::atomic::Ordering::Relaxed) && !cli::Cli::printed_json() {
                // Scripts reading stdout get one JSON object too, not an empty stream.
                let kind = e
                    .chain()
                    .find_map(|c| c.downcast_ref::<repo::Error>())
                    .and_then(|r| serde_json::to_value(r.kind()).ok())
                    .unwrap_or_else(|| "error".into());
                let v = serde_json::json!({"error": {"kind": kind, "message": message, "exit_code": cli::exit::code(&e)}});
                println!("{v}");
            }
            std::process::exit(cli::exit::code(&e));
        }
        Err(p) => {
            let closed = p.downcast_ref::<String>().is_some_and(|m| {
                m.starts_with("failed printing to stdout") && m.contains("Broken pipe")
            });
            std::process::exit(if closed { 0 } else { 101 });
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_said_once() {
        let chain = [
            "opening /x",
            "reading /x: Permission denied (os error 13)",
            "Permission denied (os error 13)",
        ];
        assert_eq!(
            super::one_line(chain.iter().map(|s| s.to_string())),
            "opening /x: reading /x: Permission denied (os error 13)"
        );
    }
}
