//! `repo init`.

use anyhow::Result;

use super::context::{GlobalOpts, Purpose};
use super::fmt::print_json;
use repo::config::RepoConfig;
use repo::key::KdfParams;
use repo::repository::Repository;

/// Arguments of `repo init`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// zstd compression level for new blobs (0 = store raw)
    #[arg(long, default_value_t = 3)]
    compression: i32,
    /// Target pack size in MiB
    #[arg(long, default_value_t = 32)]
    pack_size_mib: u64,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let loc = g.location()?;
    let backend = g.backend(&loc)?;
    if backend.exists(repo::config::CONFIG_PATH)? {
        anyhow::bail!(repo::Error::AlreadyExists(loc.path.display().to_string()));
    }
    let mut cfg = RepoConfig::new_default();
    cfg.compression_level = a.compression;
    cfg.pack_size = a.pack_size_mib.saturating_mul(1 << 20);
    cfg.validate()?;
    let pw = g.password(&loc, Purpose::Create)?;
    let cfg = Repository::init(backend.as_ref(), &pw, cfg, KdfParams::new_default())?;
    if g.json {
        print_json(&serde_json::json!({
            "id": cfg.id,
            "location": loc.path.display().to_string(),
            "version": cfg.version,
        }))?;
    } else {
        println!(
            "created repository {} at {}",
            cfg.id.short(),
            loc.path.display()
        );
    }
    Ok(0)
}
