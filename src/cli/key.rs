//! `repo key`.

use anyhow::{bail, Result};
use clap::Subcommand;
use zeroize::Zeroizing;

use super::context::GlobalOpts;
use super::fmt::{print_json, table};
use repo::ops::keys::{self, KeyReport, KeyRequest};
use repo::secret::Password;

/// Arguments of `repo key`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
    /// Read the new password from this file (first line) [env: REPO_NEW_PASSWORD_FILE; or
    /// set REPO_NEW_PASSWORD]
    #[arg(long, env = "REPO_NEW_PASSWORD_FILE", hide_env = true, global = true)]
    new_password_file: Option<std::path::PathBuf>,
}

impl Args {
    /// Whether the command changes the keys (and so goes in the operation log).
    pub fn changes(&self) -> bool {
        !matches!(self.command, KeyCommand::List)
    }
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// List the keys (passwords) that open the repository
    List,
    /// Add a password
    Add,
    /// Remove a key by id (not the last one, nor the one in use)
    Remove {
        /// Key id or unique prefix
        id: String,
    },
    /// Change the password of the key in use
    Passwd,
}

fn new_password(a: &Args) -> Result<Password> {
    read_new_password(a).map(|p| Password::new(p.to_vec()))
}

fn read_new_password(a: &Args) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(f) = &a.new_password_file {
        return super::context::read_password_file(f);
    }
    if let Some(p) = std::env::var_os("REPO_NEW_PASSWORD") {
        use std::os::unix::ffi::OsStrExt;
        if !p.is_empty() {
            return Ok(Zeroizing::new(p.as_bytes().to_vec()));
        }
    }
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(rpassword::prompt_password("new password: ")?);
        let again = Zeroizing::new(rpassword::prompt_password("repeat new password: ")?);
        if *p != *again {
            bail!("the passwords do not match");
        }
        if p.is_empty() {
            bail!("empty password");
        }
        return Ok(Zeroizing::new(p.as_bytes().to_vec()));
    }
    bail!("no new password given: set REPO_NEW_PASSWORD, pass --new-password-file, or run on a terminal")
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let req = match &a.command {
        KeyCommand::List => KeyRequest::List,
        KeyCommand::Add => KeyRequest::Add {
            password: new_password(&a)?,
        },
        KeyCommand::Remove { id } => KeyRequest::Remove { id: id.clone() },
        KeyCommand::Passwd => KeyRequest::Passwd {
            password: new_password(&a)?,
        },
    };
    let repo = g.open(false)?;
    let report = keys::run(&repo, &req, &g.ctx())?;
    g.journal.report(&report, false);
    if g.json {
        print_json(&report)?;
        return Ok(0);
    }
    match report {
        KeyReport::List(ks) => {
            let rows: Vec<Vec<String>> = ks
                .iter()
                .map(|k| {
                    vec![
                        format!("{}{}", if k.current { "*" } else { " " }, k.id.short()),
                        match &k.damaged {
                            Some(why) => format!("DAMAGED: {why}"),
                            None => k
                                .created
                                .chars()
                                .take(19)
                                .collect::<String>()
                                .replace('T', " "),
                        },
                        k.host.clone(),
                        k.user.clone(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(&[" ID", "CREATED (UTC)", "HOST", "USER"], &rows).trim_end()
            );
            println!("* = the key that opened the repository");
        }
        KeyReport::Changed {
            added: Some(new),
            removed: Some(old),
        } => println!(
            "password changed (key {} replaces {})",
            new.short(),
            old.short()
        ),
        KeyReport::Changed {
            added: Some(id), ..
        } => println!("added key {}", id.short()),
        KeyReport::Changed {
            removed: Some(id), ..
        } => println!("removed key {}", id.short()),
        KeyReport::Changed { .. } => {}
    }
    Ok(0)
}
