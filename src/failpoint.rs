//! Crash injection for tests: `REPO_FAILPOINT=<name>` makes the process abort (as if
//! killed) when it reaches the point of that name; `REPO_FAILPOINT=<name>:sleep=<secs>`
//! pauses it there instead (to hold a lock or a half-done state while a test looks), and
//! `REPO_FAILPOINT=<name>:wait=<path>` pauses it until the file `path` exists: the test
//! releases it when done looking, however slow the machine (a pause of fixed length
//! could end while a loaded machine was still running the test's side).
//! `REPO_FAILPOINT=<name>:skip` leaves out an optional step ([`skip`]). Several points
//! may be named, comma-separated.
//! Used to prove that an operation interrupted at each dangerous step leaves the
//! repository intact. Only builds with the `testing` feature (the test suite's) act on it;
//! in every other build a failpoint is nothing at all.

/// Does nothing: failpoints act only in builds with the `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Aborts (or pauses) the process if `REPO_FAILPOINT` names this point.
#[cfg(feature = "testing")]
pub fn hit(name: &str) {
    let Some(v) = std::env::var_os("REPO_FAILPOINT") else {
        return;
    };
    let v = v.to_string_lossy();
    // Several points, comma-separated: this one's action, if it is named.
    let Some((_, action)) = v
        .split(',')
        .map(|one| one.split_once(':').unwrap_or((one, "abort")))
        .find(|(point, _)| *point == name)
    else {
        return;
    };
    if let Some(secs) = action
        .strip_prefix("sleep=")
        .and_then(|s| s.parse::<f64>().ok())
    {
        eprintln!("failpoint {name}: pausing {secs}s");
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    } else if let Some(gate) = action.strip_prefix("wait=") {
        eprintln!("failpoint {name}: pausing until {gate} exists");
        // Bounded, so a test that dies before releasing leaves no process behind for ever.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(600);
        while !std::path::Path::new(gate).exists() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    } else {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// False: failpoints act only in builds with the `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn skip(_name: &str) -> bool {
    false
}

/// Whether `REPO_FAILPOINT=<name>:skip` asks for the step of this name to be left out, so
/// that tests reach the path taken without it (an optional shortcut, such as reading the
/// change stream instead of the oplog).
#[cfg(feature = "testing")]
pub fn skip(name: &str) -> bool {
    let want = format!("{name}:skip");
    std::env::var("REPO_FAILPOINT").is_ok_and(|v| v.split(',').any(|one| one == want))
}
