//! Where a plan's secrets come from. The config holds only the way to get them; the value
//! is read when needed and lives in a zeroizing [`Password`] or a [`ConnectionString`]
//! that never prints its credentials. Error messages name the source, never its output.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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

/// Runs `cmd` with `sh -c`, its stderr passed through (a password manager may prompt
/// there), and returns what it printed.
fn run(cmd: &str) -> Result<Vec<u8>> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::io("running password-command", e))?;
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_end(&mut out)
            .map_err(|e| Error::io("reading password-command's output", e))?;
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("running password-command", e))?;
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
}
