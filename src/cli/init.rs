//! `repo init`.

use anyhow::Result;

use super::context::{GlobalOpts, Purpose};
use super::fmt::print_json;
use repo::ops::init::{self, InitRequest};
use repo::secret::Password;

/// Arguments of `repo init`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// zstd compression level for new blobs (0 = store raw)
    #[arg(long, default_value_t = repo::config::DEFAULT_COMPRESSION)]
    compression: i32,
    /// Target pack size in MiB
    #[arg(long, default_value_t = 32)]
    pack_size_mib: u64,
    /// Repository format version: 4 (the default) compresses small files together, lists
    /// blobs compactly and cuts files under 1 MiB into 32 KiB chunks; 3, 2 or 1 for a
    /// repository that older clients must also write to
    #[arg(long, default_value_t = repo::config::FORMAT_VERSION, value_parser = clap::value_parser!(u32).range(1..=i64::from(repo::config::FORMAT_VERSION)))]
    format_version: u32,
}

pub fn run(g: &GlobalOpts, a: Args) -> Result<i32> {
    let loc = g.location()?;
    let backend = g.backend(&loc)?;
    // Before asking for a password twice: there is nothing to create.
    if backend.exists(repo::config::CONFIG_PATH)? {
        anyhow::bail!(repo::Error::AlreadyExists(loc.path.display().to_string()));
    }
    let req = InitRequest {
        compression: a.compression,
        pack_size_mib: a.pack_size_mib,
        format_version: a.format_version,
    };
    let pw = Password::new(g.password(&loc, Purpose::Create)?.to_vec());
    let mut report = init::run(backend.as_ref(), &pw, &req)?;
    report.location = loc.path.display().to_string();
    if g.json {
        print_json(&report)?;
    } else {
        println!(
            "created repository {} at {}",
            report.id.short(),
            report.location
        );
    }
    Ok(0)
}
