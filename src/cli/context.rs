//! Turning global options into an open repository: location, password, cache directory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use zeroize::Zeroizing;

use repo::backend::Backend;
use repo::config::{RepoConfig, CONFIG_PATH};
use repo::key::KdfParams;
use repo::repository::Repository;

pub use super::storage::StoreOpts;

/// Options every command accepts.
#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Repository location: a directory, or `local:DIR` [default: $XDG_DATA_HOME/repo/default]
    #[arg(long = "repo", short = 'r', env = "REPO_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Read the password from this file (first line) [env: REPO_PASSWORD_FILE; or set REPO_PASSWORD]
    #[arg(long, env = "REPO_PASSWORD_FILE", global = true, hide_env = true)]
    pub password_file: Option<PathBuf>,
    /// Local cache directory (holds the rebuildable index) [default: $XDG_CACHE_HOME/repo]
    #[arg(long, env = "REPO_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors and warnings: no progress, no summary
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log more: -v info, -vv debug, -vvv trace (to stderr, or --log-file)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace (instead of -v)
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Append the log to this file (with timestamps) instead of stderr
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// When stderr is not a terminal (cron, systemd): print a progress line this often
    /// (e.g. "30s"); with --json-progress, how often to print a JSON event [default: 1s]
    #[arg(long, global = true, value_name = "DURATION")]
    pub progress_interval: Option<String>,
    /// Progress as JSON lines on stderr ({"phase", "items", "total_items", "unit", "bytes", …})
    #[arg(long, global = true)]
    pub json_progress: bool,
    /// How long to wait for a conflicting repository lock (e.g. "10m"; default: fail at once)
    #[arg(long, global = true, value_name = "DURATION")]
    pub lock_wait: Option<String>,
    /// Config file with repositories and plans [default: $XDG_CONFIG_HOME/repo/config.toml]
    #[arg(long, env = "REPO_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use this plan's repository, password and storage options (flags and environment
    /// still win)
    #[arg(long = "plan", short = 'P', global = true, value_name = "PLAN")]
    pub plan: Option<String>,
    /// The password source of the `-P` plan's repository.
    #[arg(skip)]
    pub plan_password: Option<repo::plan::PasswordSource>,
    /// What the operation log needs from the command (shared by clones).
    #[arg(skip)]
    pub journal: JournalSlot,
    #[command(flatten)]
    pub store: StoreOpts,
}

/// What the operation log takes from a running command: the repository it opened and its
/// report. Clones share it (copy opens its destination through a clone).
#[derive(Clone, Default)]
pub struct JournalSlot(Arc<std::sync::Mutex<Taken>>);

/// The repository a command opened, its report, and whether it was a dry run.
type Taken = (Option<repo::journal::Sink>, serde_json::Value, bool);

impl std::fmt::Debug for JournalSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalSlot")
    }
}

impl JournalSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Taken> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The command opened `repo` (the first one opened is the one logged to).
    pub fn opened(&self, repo: &Repository) {
        let mut g = self.lock();
        if g.0.is_none() {
            g.0 = Some(repo::journal::Sink::of(repo));
        }
    }

    /// The command's report, for the record; a dry run leaves no record at all.
    pub fn report<T: serde::Serialize>(&self, report: &T, dry_run: bool) {
        let mut g = self.lock();
        g.1 = serde_json::to_value(report).unwrap_or_default();
        g.2 = dry_run;
    }

    /// The sink and report, taken out.
    pub fn take(&self) -> Taken {
        std::mem::take(&mut *self.lock())
    }
}

/// Why a password is needed: opening an existing repository or creating a new one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Open an existing repository.
    Open,
    /// Create a repository (ask twice on a terminal).
    Create,
}

/// The resolved repository location.
pub struct Location {
    /// The location as the library opens it (`local:DIR` for directories given that way
    /// and for the default).
    pub spec: String,
    /// Where it is (a directory, or the object-store location as given).
    pub path: PathBuf,
    /// An object-store location; None for a directory.
    pub target: Option<repo::backend::target::Target>,
    /// True for the embedded default (no `--repo`).
    pub is_default: bool,
}

impl Location {
    /// The embedded default repository in `dir`.
    fn default_at(dir: PathBuf) -> Self {
        Location {
            spec: format!("local:{}", dir.display()),
            path: dir,
            target: None,
            is_default: true,
        }
    }
}

impl GlobalOpts {
    /// The config file's path: `--config`, `REPO_CONFIG`, or the default.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.config
            .clone()
            .or_else(repo::plan::Config::default_path)
    }

    /// With `-P PLAN`: takes the plan's repository location, password source and storage
    /// options where no flag or environment variable gave them.
    pub fn apply_plan(&mut self) -> Result<()> {
        let Some(name) = self.plan.clone() else {
            return Ok(());
        };
        let cfg = super::plans::load(self)?;
        let plan = cfg.plan(&name)?;
        let conf = cfg.repository(&plan.repository)?;
        if self.repo.is_none() {
            self.repo = Some(conf.location.clone());
            self.plan_password = Some(conf.password.clone());
        }
        self.store.plan_storage = Some(conf.storage.clone());
        Ok(())
    }

    /// A location given as text (`--repo`, a config file).
    pub fn location_of(&self, s: &str) -> Result<Location> {
        if s.is_empty() {
            bail!("the repository location is empty");
        }
        let (path, target) = match s.strip_prefix("local:") {
            Some(dir) => (dir, None),
            None => (s, repo::backend::target::Target::parse(s)?),
        };
        // A local directory is named absolutely in messages and records, whatever the
        // current directory is later.
        let path = match target {
            None => std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path)),
            Some(_) => PathBuf::from(path),
        };
        Ok(Location {
            spec: s.to_string(),
            path,
            target,
            is_default: false,
        })
    }

    /// Where the repository is.
    pub fn location(&self) -> Result<Location> {
        match self.repo.as_deref() {
            Some("") => bail!("--repo is empty"),
            Some(s) => self.location_of(s),
            None => Ok(Location::default_at(
                dirs::data_dir()
                    .ok_or_else(|| anyhow!("cannot find a data directory: set HOME or XDG_DATA_HOME, or pass --repo"))?
                    .join("repo")
                    .join("default"),
            )),
        }
    }

    /// Root of the local caches.
    pub fn cache_root(&self) -> Result<PathBuf> {
        match &self.cache_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(dirs::cache_dir()
                .ok_or_else(|| anyhow!("cannot find a cache directory: set HOME or XDG_CACHE_HOME, or pass --cache-dir"))?
                .join("repo")),
        }
    }

    /// Whether to draw progress on stderr.
    pub fn show_progress(&self) -> bool {
        !self.quiet && !self.json && std::io::stderr().is_terminal()
    }

    /// How progress is shown: bars on a terminal; otherwise lines or JSON events at an
    /// interval when asked; nothing with `--quiet`.
    pub fn progress_mode(&self) -> Result<super::progress::Mode> {
        use super::progress::Mode;
        let every = match &self.progress_interval {
            Some(t) => Some(
                repo::timespec::parse_duration(t)
                    .with_context(|| format!("--progress-interval {t:?}"))?
                    .to_std()
                    .ok()
                    .filter(|d| !d.is_zero())
                    .with_context(|| format!("--progress-interval {t:?}: must be above zero"))?,
            ),
            None => None,
        };
        Ok(if self.quiet {
            Mode::None
        } else if self.json_progress {
            Mode::Json(every.unwrap_or(std::time::Duration::from_secs(1)))
        } else if self.show_progress() {
            Mode::Bars
        } else if let Some(d) = every {
            Mode::Lines(d)
        } else {
            Mode::None
        })
    }

    /// The backend for the location (storage options apply to object stores only).
    pub fn backend(&self, loc: &Location) -> Result<Arc<dyn Backend>> {
        // Read (and so check) the options file even for a directory, where its keys do
        // not apply: a misspelt key or a missing --options-file is an error everywhere.
        let resolved = self.store.resolve()?;
        let opts = match &loc.target {
            None => Default::default(),
            Some(_) => resolved,
        };
        Ok(repo::backend::open(&loc.spec, &opts)?)
    }

    /// Gets the password: `--password-file`, `REPO_PASSWORD`, the `-P` plan's password
    /// source, the default repository's generated key file, or a terminal prompt, in that
    /// order.
    pub fn password(&self, loc: &Location, purpose: Purpose) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(f) = &self.password_file {
            return read_password_file(f);
        }
        if let Some(p) = std::env::var_os("REPO_PASSWORD") {
            if !p.is_empty() {
                use std::os::unix::ffi::OsStrExt;
                return Ok(Zeroizing::new(p.as_bytes().to_vec()));
            }
        }
        if let Some(source) = &self.plan_password {
            if let Some(p) = source.read()? {
                return Ok(Zeroizing::new(p.expose().to_vec()));
            }
        }
        if loc.is_default {
            let kf = default_key_file()?;
            if kf.exists() {
                let text = Zeroizing::new(
                    std::fs::read_to_string(&kf)
                        .with_context(|| format!("reading key file {}", kf.display()))?,
                );
                return Ok(Zeroizing::new(text.trim().as_bytes().to_vec()));
            }
            if purpose == Purpose::Create {
                return generate_key_file(&kf);
            }
        }
        if std::io::stdin().is_terminal() {
            let p = Zeroizing::new(rpassword::prompt_password("repository password: ")?);
            if purpose == Purpose::Create {
                let again = Zeroizing::new(rpassword::prompt_password("repeat password: ")?);
                if *again != *p {
                    bail!("the passwords do not match");
                }
            }
            if p.is_empty() {
                bail!("empty password");
            }
            return Ok(Zeroizing::new(p.as_bytes().to_vec()));
        }
        bail!("no password given: set REPO_PASSWORD, pass --password-file, or run on a terminal")
    }

    /// Opens the repository; the default one is created on first use when `create` is set.
    pub fn open(&self, create_default: bool) -> Result<Repository> {
        let loc = self.location()?;
        let backend = self.backend(&loc)?;
        if loc.is_default && create_default && !backend.exists(CONFIG_PATH)? {
            let pw = self.password(&loc, Purpose::Create)?;
            match Repository::init(
                backend.as_ref(),
                &pw,
                RepoConfig::new_default(),
                KdfParams::new_default(),
            ) {
                Ok(cfg) if !self.quiet => eprintln!(
                    "created repository {} at {}",
                    cfg.id.short(),
                    loc.path.display()
                ),
                Ok(_) => {}
                // Another command's first use created it at the same moment: use that one.
                Err(repo::Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !backend.exists(CONFIG_PATH)? {
            bail!(repo::Error::NoRepository(loc.path.display().to_string()));
        }
        let pw = self.password(&loc, Purpose::Open)?;
        let mut repo = Repository::open(backend, &pw, &self.cache_root()?)
            .with_context(|| format!("opening repository at {}", loc.path.display()))?;
        repo.set_lock_wait(self.lock_wait()?);
        self.journal.opened(&repo);
        Ok(repo)
    }

    /// How long a verb waits for a conflicting lock (`--lock-wait`).
    pub fn lock_wait(&self) -> Result<std::time::Duration> {
        match &self.lock_wait {
            Some(w) => repo::timespec::parse_duration(w)
                .with_context(|| format!("--lock-wait {w:?}"))?
                .to_std()
                .context("--lock-wait must not be negative"),
            None => Ok(std::time::Duration::ZERO),
        }
    }

    /// The observer and cancellation token a verb runs with: progress bars on a terminal,
    /// messages on stderr (unless `--quiet`), and Ctrl-C/SIGTERM as cancellation.
    pub fn ctx(&self) -> repo::ops::context::Ctx {
        // A bad --progress-interval is reported when the command starts (`check_args`).
        let mode = self.progress_mode().unwrap_or(super::progress::Mode::None);
        super::progress::context(mode, self.quiet, self.json)
    }

    /// Fails on global options that are wrong whatever the command.
    pub fn check_args(&self) -> Result<()> {
        self.progress_mode().map(|_| ())
    }
}

/// The first line of a password file (without its line ending); empty is an error.
pub fn read_password_file(f: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let pw = repo::plan::PasswordSource::File(f.to_path_buf())
        .read()?
        .ok_or_else(|| anyhow!("password file {} gave no password", f.display()))?;
    Ok(Zeroizing::new(pw.expose().to_vec()))
}

/// Where the default repository's generated password lives.
pub fn default_key_file() -> Result<PathBuf> {
    Ok(dirs::config_dir()
        .ok_or_else(|| anyhow!("cannot find a config directory: set HOME or XDG_CONFIG_HOME"))?
        .join("repo")
        .join("default.key"))
}

fn generate_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("invalid key file path {}", path.display()))?;
    let secret = Zeroizing::new(format!("{}\n", hex::encode(rand::random::<[u8; 32]>())));
    // Created as a repository object is (written whole, synced, then linked into place,
    // mode 0600): a command starting at the same moment finds no file or the whole one,
    // and of two generating at once exactly one password is kept (the other takes it).
    let created = repo::backend::local::LocalBackend::new(dir)
        .put_new(name, secret.as_bytes())
        .with_context(|| format!("creating key file {}", path.display()))?;
    if !created {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading key file {}", path.display()))?,
        );
        return Ok(Zeroizing::new(text.trim().as_bytes().to_vec()));
    }
    eprintln!("================================================================");
    eprintln!("NOTICE: generated a random password for the default repository:");
    eprintln!("    {}", path.display());
    eprintln!("Back this file up somewhere safe. Without it the backups cannot");
    eprintln!("be decrypted by anyone, including you.");
    eprintln!("================================================================");
    Ok(Zeroizing::new(secret.trim_end().as_bytes().to_vec()))
}
