//! What OpenDAL cannot do over SFTP (setting permissions), done with the `sftp` client.

use super::super::target::{ObjectOptions, Target};
use crate::error::{Error, Result};

/// An SFTP location as the `sftp` command-line client takes it.
pub(super) struct SftpLogin {
    destination: String,
    port: Option<u16>,
    key: Option<String>,
    accept_new: bool,
    pub(super) path: String,
}

impl SftpLogin {
    /// The login for an SFTP target; `None` for other stores.
    pub(super) fn of(target: &Target, o: &ObjectOptions) -> Option<Self> {
        let Target::Sftp {
            user,
            host,
            port,
            path,
        } = target
        else {
            return None;
        };
        Some(SftpLogin {
            destination: match user {
                Some(u) => format!("{u}@{host}"),
                None => host.clone(),
            },
            port: *port,
            key: o.ssh_key.clone(),
            accept_new: o.ssh_accept_new_host,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// Runs `commands` in one batch session (`sftp -b -`), through the same `ssh` OpenDAL
    /// uses (the first on PATH, with the user's configuration).
    pub(super) fn batch(&self, commands: &str) -> Result<()> {
        use std::io::Write;
        let mut c = std::process::Command::new("sftp");
        c.args(["-q", "-b", "-", "-S", "ssh"]);
        if let Some(p) = self.port {
            c.args(["-P", &p.to_string()]);
        }
        if let Some(k) = &self.key {
            c.args(["-i", k]);
        }
        let strict = if self.accept_new { "accept-new" } else { "yes" };
        c.args(["-o", &format!("StrictHostKeyChecking={strict}")]);
        c.arg(&self.destination)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = c
            .spawn()
            .map_err(|e| Error::io("running the sftp client (install openssh-client)", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(commands.as_bytes())
                .map_err(|e| Error::io("talking to the sftp client", e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io("running the sftp client", e))?;
        if !out.status.success() {
            return Err(Error::storage(
                format!(
                    "restricting access on {}: {}",
                    self.destination,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                false,
            ));
        }
        Ok(())
    }
}
