//! Commands run around a plan's run: `before` (a failure skips the run), `after` (always),
//! `on-success` and `on-failure`. Each runs with `sh -c`, in its own process group (so a
//! timeout stops everything it started), with the run described in `REPO_*` variables,
//! and its output going to stderr (stdout is for reports).

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a hook may take unless the plan says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A plan's hooks.
#[derive(Clone, Debug, Serialize)]
pub struct Hooks {
    pub before: Option<String>,
    pub after: Option<String>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    /// Per hook.
    #[serde(serialize_with = "crate::timespec::secs::serialize")]
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            before: None,
            after: None,
            on_success: None,
            on_failure: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// How a hook went.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HookOutcome {
    /// Which hook.
    pub hook: String,
    /// The command.
    pub command: String,
    /// Its exit code (None: killed by a signal or by the timeout).
    pub exit_code: Option<i32>,
    /// It ran past the timeout and was killed.
    pub timed_out: bool,
    /// Seconds it took.
    pub seconds: f64,
    /// Why it could not run at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HookOutcome {
    /// Exited with 0.
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        match (&self.error, self.timed_out, self.exit_code) {
            (Some(e), _, _) => format!("{} hook could not run: {e}", self.hook),
            (None, true, _) => format!("{} hook timed out after {:.0}s", self.hook, self.seconds),
            (None, false, Some(c)) => format!("{} hook exited with {c}", self.hook),
            (None, false, None) => format!("{} hook was killed by a signal", self.hook),
        }
    }
}

/// Runs `command` as hook `hook` with `env` added to the environment.
pub fn run(hook: &str, command: &str, env: &[(String, String)], timeout: Duration) -> HookOutcome {
    let start = Instant::now();
    let mut outcome = HookOutcome {
        hook: hook.to_string(),
        command: command.to_string(),
        exit_code: None,
        timed_out: false,
        seconds: 0.0,
        error: None,
    };
    let stderr = std::io::stderr().as_fd().try_clone_to_owned();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0);
    if let Ok(fd) = stderr {
        if let Ok(fd2) = fd.try_clone() {
            c.stdout(Stdio::from(fd2));
        }
        c.stderr(Stdio::from(fd));
    }
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                outcome.exit_code = status.code();
                break;
            }
            Ok(None) if start.elapsed() > timeout => {
                // The whole group: a hook's children go too.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                outcome.timed_out = true;
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                outcome.error = Some(e.to_string());
                break;
            }
        }
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_environment_and_timeouts() {
        let env = vec![("REPO_PLAN".to_string(), "app".to_string())];
        let ok = run("before", "test \"$REPO_PLAN\" = app", &env, DEFAULT_TIMEOUT);
        assert!(ok.ok(), "{ok:?}");
        let bad = run("before", "exit 7", &env, DEFAULT_TIMEOUT);
        assert_eq!(bad.exit_code, Some(7));
        assert!(bad.describe().contains("exited with 7"));
        let slow = run(
            "after",
            "sleep 30 & sleep 30",
            &env,
            Duration::from_millis(200),
        );
        assert!(slow.timed_out && !slow.ok(), "{slow:?}");
        assert!(slow.seconds < 10.0);
    }
}
