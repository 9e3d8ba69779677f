//! Object-storage settings from flags, the environment and the options file.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use repo::backend::target::ObjectOptions;

/// Object-storage settings (for `s3:`, `gs:`, `azure:` and `sftp:` repositories). Each
/// can also come from the environment or from the `[storage]` keys of the options file.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Object storage")]
pub struct StoreOpts {
    /// Service endpoint URL (S3-compatible servers, emulators) [env: REPO_ENDPOINT]
    #[arg(long, global = true, env = "REPO_ENDPOINT", hide_env = true)]
    pub endpoint: Option<String>,
    /// S3 region [env: REPO_REGION, AWS_REGION]
    #[arg(long, global = true, env = "REPO_REGION", hide_env = true)]
    pub region: Option<String>,
    /// S3: address buckets as bucket.host instead of host/bucket
    #[arg(long, global = true)]
    pub virtual_host_style: bool,
    /// Storage class for new objects (e.g. STANDARD_IA, NEARLINE)
    #[arg(long, global = true, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Requests in flight at once [default: 8]
    #[arg(long, global = true, value_name = "N")]
    pub connections: Option<usize>,
    /// Retries of a failed request, with exponential backoff [default: 8]
    #[arg(long, global = true, value_name = "N")]
    pub retries: Option<usize>,
    /// Upload bandwidth cap, bytes per second (e.g. 10M)
    #[arg(long, global = true, value_name = "RATE")]
    pub limit_upload: Option<String>,
    /// Download bandwidth cap, bytes per second (e.g. 50M)
    #[arg(long, global = true, value_name = "RATE")]
    pub limit_download: Option<String>,
    /// SFTP: private key file
    #[arg(long, global = true, value_name = "FILE")]
    pub ssh_key: Option<String>,
    /// SFTP: trust a server's host key on first connection and add it to known_hosts
    /// (default: the host must already be in known_hosts)
    #[arg(long, global = true)]
    pub ssh_accept_new_host: bool,
    /// Options file with `key = value` lines for the settings above
    /// [default: $XDG_CONFIG_HOME/repo/options]
    #[arg(long, global = true, env = "REPO_OPTIONS_FILE", hide_env = true)]
    pub options_file: Option<PathBuf>,
    /// The `-P` plan's repository's storage options (below flags, above the options file).
    #[arg(skip)]
    pub plan_storage: Option<ObjectOptions>,
}

/// Keys the options file may set (same names as the flags).
const KEYS: &[&str] = &[
    "endpoint",
    "region",
    "virtual-host-style",
    "storage-class",
    "connections",
    "retries",
    "limit-upload",
    "limit-download",
    "ssh-key",
    "ssh-accept-new-host",
];

impl StoreOpts {
    /// Flags (and their environment variables) over the options file (or, with `-P`,
    /// the plan's repository's options) over defaults.
    pub fn resolve(&self) -> Result<ObjectOptions> {
        let base = match &self.plan_storage {
            Some(plan) => plan.clone(),
            None => self.file_options()?,
        };
        self.over(base)
    }

    /// The options file's keys as options.
    fn file_options(&self) -> Result<ObjectOptions> {
        let file = self.read_file()?;
        let get =
            |k: &str| -> Option<&String> { file.iter().find(|(key, _)| key == k).map(|(_, v)| v) };
        let num = |k: &str| -> Result<Option<usize>> {
            get(k)
                .map(|v| {
                    v.parse()
                        .with_context(|| format!("options file: {k} = {v:?}"))
                })
                .transpose()
        };
        let rate =
            |k: &str| -> Result<Option<u64>> { get(k).map(|v| positive_size(v, k)).transpose() };
        Ok(ObjectOptions {
            endpoint: get("endpoint").cloned(),
            region: get("region").cloned(),
            virtual_host_style: get("virtual-host-style").is_some_and(|v| v == "true"),
            storage_class: get("storage-class").cloned(),
            connections: num("connections")?,
            retries: num("retries")?,
            limit_upload: rate("limit-upload")?,
            limit_download: rate("limit-download")?,
            ssh_key: get("ssh-key").cloned(),
            ssh_accept_new_host: get("ssh-accept-new-host").is_some_and(|v| v == "true"),
            ..Default::default()
        })
    }

    /// Flags (and their environment variables) over `base`.
    fn over(&self, base: ObjectOptions) -> Result<ObjectOptions> {
        let rate = |flag: &Option<String>, k: &str| -> Result<Option<u64>> {
            flag.as_ref().map(|v| positive_size(v, k)).transpose()
        };
        Ok(ObjectOptions {
            endpoint: self.endpoint.clone().or(base.endpoint),
            region: self.region.clone().or(base.region),
            virtual_host_style: self.virtual_host_style || base.virtual_host_style,
            storage_class: self.storage_class.clone().or(base.storage_class),
            connections: self.connections.or(base.connections),
            retries: self.retries.or(base.retries),
            limit_upload: rate(&self.limit_upload, "limit-upload")?.or(base.limit_upload),
            limit_download: rate(&self.limit_download, "limit-download")?.or(base.limit_download),
            ssh_key: self.ssh_key.clone().or(base.ssh_key),
            ssh_accept_new_host: self.ssh_accept_new_host || base.ssh_accept_new_host,
            fault_ratio: fault_ratio()?,
            no_ambient_credentials: std::env::var_os("REPO_NO_AMBIENT_CREDENTIALS")
                .is_some_and(|v| v == "1"),
        })
    }

    /// `key = value` lines; `#` starts a comment. A missing default file is fine.
    fn read_file(&self) -> Result<Vec<(String, String)>> {
        let (path, explicit): (PathBuf, bool) = match &self.options_file {
            Some(p) => (p.clone(), true),
            None => match dirs::config_dir() {
                Some(d) => (d.join("repo").join("options"), false),
                None => return Ok(Vec::new()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new())
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading options file {}", path.display()))
            }
        };
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                bail!("{}:{}: expected `key = value`", path.display(), n + 1);
            };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if !KEYS.contains(&k) {
                bail!(
                    "{}:{}: unknown option {k:?} (known: {})",
                    path.display(),
                    n + 1,
                    KEYS.join(", ")
                );
            }
            out.push((k.to_string(), v.to_string()));
        }
        if !out.is_empty() {
            eprintln!(
                "note: {} is deprecated: put these keys under [repositories.NAME] in the config file \
                 (README, \"Backup plans\") and use -P PLAN",
                path.display()
            );
        }
        Ok(out)
    }
}

/// A rate limit: a size above zero.
fn positive_size(v: &str, k: &str) -> Result<u64> {
    let n = super::fmt::parse_size(v).with_context(|| format!("--{k} {v:?}"))?;
    if n == 0 {
        bail!("--{k} must be above 0");
    }
    Ok(n)
}

/// Injected storage faults: only test builds read the variable.
fn fault_ratio() -> Result<Option<f64>> {
    #[cfg(not(feature = "testing"))]
    return Ok(None);
    #[cfg(feature = "testing")]
    match std::env::var("REPO_TEST_FAULT_RATIO") {
        Ok(v) if !v.is_empty() => Ok(Some(
            v.parse::<f64>()
                .ok()
                .filter(|r| (0.0..1.0).contains(r))
                .with_context(|| format!("REPO_TEST_FAULT_RATIO={v:?}: want 0 ≤ r < 1"))?,
        )),
        _ => Ok(None),
    }
}
