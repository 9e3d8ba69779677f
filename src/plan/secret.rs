//! Where a plan's secrets come from. The config holds only the way to get them; the value
//! is read when needed and lives in a zeroizing [`Password`] or a [`ConnectionString`]
//! that never prints its credentials. Error messages name the source, never its output.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::mongo::uri::ConnectionString;
use crate::secret::Password;

/// How to get a repository's password.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "name")]
pub enum PasswordSource {
    /// The first line of this file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// The first line this shell command prints (`pass show backups/main`).
    Command(String),
    /// Not configured: the usual `--password-file` / `REPO_PASSWORD` / prompt apply.
    Ask,
}

impl PasswordSource {
    /// The password, or `None` for [`PasswordSource::Ask`].
    pub fn read(&self) -> Result<Option<Password>> {
        let line = match self {
            PasswordSource::Ask => return Ok(None),
            PasswordSource::File(path) => first_line(
                std::fs::read(path).map_err(|e| {
                    Error::io(format!("reading password file {}", path.display()), e)
                })?,
                &format!("password file {}", path.display()),
            )?,
            PasswordSource::Env(var) => first_line(
                env_bytes(var).ok_or_else(|| {
                    Error::Invalid(format!("password-env: {var} is not set or empty"))
                })?,
                &format!("environment variable {var}"),
            )?,
            PasswordSource::Command(cmd) => first_line(run(cmd)?, "password-command's output")?,
        };
        Ok(Some(Password::new(line)))
    }
}

/// How to get a MongoDB connection string.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "name")]
pub enum UriSource {
    /// This environment variable.
    Env(String),
    /// The first line of this file.
    File(PathBuf),
}

impl UriSource {
    /// The connection string.
    pub fn read(&self) -> Result<ConnectionString> {
        let bytes = match self {
            UriSource::Env(var) => env_bytes(var).ok_or_else(|| {
                Error::Invalid(format!("mongodb uri-env: {var} is not set or empty"))
            })?,
            UriSource::File(path) => std::fs::read(path).map_err(|e| {
                Error::io(
                    format!("reading MongoDB connection string file {}", path.display()),
                    e,
                )
            })?,
        };
        let line = first_line(bytes, "the MongoDB connection string")?;
        let text = String::from_utf8(line)
            .map_err(|_| Error::Invalid("the MongoDB connection string is not UTF-8".into()))?;
        Ok(ConnectionString::new(text))
    }
}

fn env_bytes(var: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(|v| v.as_bytes().to_vec())
}

/// The first line of `bytes` without its line ending; empty is an error.
fn first_line(bytes: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    let bytes = zeroize::Zeroizing::new(bytes);
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(Error::Invalid(format!("{what} is empty")));
    }
    Ok(line.to_vec())
}

/// How long a password command may take (a password manager may wait for a touch or a
/// passphrase on the terminal; a service must not hang on one forever).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` with `sh -c`, its stderr passed through (a password manager may prompt
/// there), and returns what it printed; killed after [`COMMAND_TIMEOUT`].
fn run(cmd: &str) -> Result<Vec<u8>> {
    run_within(cmd, COMMAND_TIMEOUT)
}

fn run_within(cmd: &str, timeout: Duration) -> Result<Vec<u8>> {
    // Same process group: a prompt on the terminal must stay in the foreground.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::io("running password-command", e))?;
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut stdout) = child.stdout.take() {
        // A reader of its own: the output arrives whenever the command writes it.
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let r = stdout.read_to_end(&mut out).map(|_| out);
            let _ = tx.send(r);
        });
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Invalid(format!(
                    "password-command did not finish within {} s and was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Error::io("running password-command", e)),
        }
    };
    // What it printed; a background child still holding the pipe gets a moment only.
    let mut out = match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(r) => r.map_err(|e| Error::io("reading password-command's output", e))?,
        Err(_) => Vec::new(),
    };
    if !status.success() {
        zeroize::Zeroize::zeroize(&mut out);
        return Err(Error::Invalid(format!(
            "password-command failed ({status}); its output is not shown"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_files_and_variables_give_their_first_line() {
        let pw = PasswordSource::Command("printf 'hunter2\\nsecond line'".into())
            .read()
            .unwrap()
            .unwrap();
        assert_eq!(pw.expose(), b"hunter2");
        let err = PasswordSource::Command("echo leaked; exit 3".into())
            .read()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("leaked"), "{err}");
        assert!(PasswordSource::Ask.read().unwrap().is_none());
        let err = PasswordSource::Env("REPO_TEST_SURELY_UNSET_VARIABLE".into())
            .read()
            .unwrap_err();
        assert!(err.to_string().contains("not set"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("uri");
        std::fs::write(&f, "mongodb://u:p@h/\n").unwrap();
        let uri = UriSource::File(f).read().unwrap();
        assert_eq!(uri.expose(), "mongodb://u:p@h/");
        assert!(!format!("{uri:?} {uri}").contains(":p@"));
    }

    #[test]
    fn a_hanging_command_is_stopped() {
        let t = Instant::now();
        let err = run_within("sleep 30", Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(10));
        // Output written after a pause still arrives.
        let out = run_within("sleep 0.2; echo late", Duration::from_secs(10)).unwrap();
        assert_eq!(out, b"late\n");
    }
}
