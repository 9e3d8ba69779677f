//! `repo settings`.

use anyhow::Result;

use super::context::GlobalOpts;
use super::fmt::{bytes, parse_size, print_json};
use repo::ops::settings::{self, SettingsRequest};

/// Arguments of `repo settings`.
#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    /// Set the size quota ("500GiB", "2TB", "1000000") or remove it ("none")
    #[arg(long, value_name = "SIZE|none")]
    quota: Option<String>,
    /// Remove the stored retention policy
    #[arg(long)]
    clear_policy: bool,
}

impl SettingsArgs {
    /// Whether it changes the repository (else it only shows the settings).
    pub fn changes(&self) -> bool {
        self.quota.is_some() || self.clear_policy
    }
}

pub fn run(g: &GlobalOpts, a: SettingsArgs) -> Result<i32> {
    let req = SettingsRequest {
        set_quota: a
            .quota
            .as_deref()
            .filter(|q| *q != "none")
            .map(parse_size)
            .transpose()?,
        remove_quota: a.quota.as_deref() == Some("none"),
        clear_policy: a.clear_policy,
    };
    let repo = g.open(false)?;
    let r = settings::run(&repo, &req, &g.ctx())?;
    if g.json {
        print_json(&r)?;
        return Ok(0);
    }
    match &r.settings.retention {
        Some(p) => println!("retention policy: {}", p.describe()),
        None => println!(
            "retention policy: none (save one with `repo forget --keep-... --save-policy`)"
        ),
    }
    match r.settings.quota_bytes {
        Some(q) => println!("quota: {} ({} used)", bytes(q), bytes(r.used_bytes)),
        None => println!("quota: none"),
    }
    Ok(0)
}
