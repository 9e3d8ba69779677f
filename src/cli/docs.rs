//! `repo completions SHELL` and `repo man DIR`: shell completions and man pages generated
//! from the same clap definitions as the parser, so they never drift from the flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;

/// Arguments of `repo completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, powershell or elvish
    shell: clap_complete::Shell,
}

/// Arguments of `repo man`.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write `repo.1` and one `repo-COMMAND.1` per command into
    dir: PathBuf,
}

pub fn completions(a: CompletionsArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "repo", &mut std::io::stdout());
    Ok(0)
}

pub fn man(a: ManArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let cmd = super::Cli::command();
    clap_mangen::generate_to(cmd, &a.dir)
        .with_context(|| format!("writing man pages into {}", a.dir.display()))?;
    let n = std::fs::read_dir(&a.dir).map(|d| d.count()).unwrap_or(0);
    eprintln!(
        "{n} man pages in {} (read one with `man -l {}/repo.1`)",
        a.dir.display(),
        a.dir.display()
    );
    Ok(0)
}
