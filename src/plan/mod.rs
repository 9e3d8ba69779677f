//! Backup plans: one TOML file naming repositories (where, which password), plans (what
//! to back up into which repository, when, kept how long, copied where, checked how, with
//! which hooks and notifications) and notification targets.
//!
//! [`Config::load`] reads and checks the whole file before anything runs: unknown keys
//! (with the closest valid one), bad values and dangling names are errors with
//! `file:line:column`. Secrets are never in this structure: it holds where to get them
//! (a file, an environment variable, a command), read only when a repository is opened
//! or a source connected.

mod check;
pub mod email;
mod file;
pub mod hooks;
mod maintenance;
pub mod notify;
pub mod schedule;
pub mod secret;
mod service;
pub mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::backend::target::ObjectOptions;
use crate::error::{Error, Result};
use crate::retention::RetentionPolicy;
use crate::source::exclude::ExcludeSettings;

pub use maintenance::{CheckPolicy, PrunePolicy};
pub use schedule::Schedule;
pub use secret::{PasswordSource, UriSource};
pub use service::ServiceConf;

/// The checked config file.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Repositories by name.
    pub repositories: BTreeMap<String, RepositoryConf>,
    /// Plans by name.
    pub plans: BTreeMap<String, Plan>,
    /// Notification targets by name.
    pub notify: BTreeMap<String, notify::Target>,
    /// `[service]`, with defaults filled in.
    pub service: ServiceConf,
}

/// A named repository.
#[derive(Clone, Debug, Serialize)]
pub struct RepositoryConf {
    /// Its name in the file.
    pub name: String,
    /// Where it is, as `--repo` takes it.
    pub location: String,
    /// How to get its password.
    pub password: PasswordSource,
    /// Storage options for object stores.
    #[serde(skip)]
    pub storage: ObjectOptions,
}

/// A named plan.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Its name in the file.
    pub name: String,
    /// The repository's name.
    pub repository: String,
    /// Files and directories (absolute).
    pub paths: Vec<PathBuf>,
    /// What to leave out of them.
    pub excludes: ExcludeSettings,
    /// A MongoDB source.
    pub mongodb: Option<MongoPlan>,
    /// Tags for its snapshots (`plan:NAME` is always added).
    pub tags: Vec<String>,
    /// Host name to record.
    pub host: Option<String>,
    /// When the service runs it.
    pub schedule: Option<Schedule>,
    /// What `forget` keeps after each run, and whether to prune.
    pub retention: Option<Retention>,
    /// Repositories each new snapshot is copied to.
    pub copy_to: Vec<String>,
    /// What to check after each run.
    pub check: CheckPolicy,
    /// A check on its own schedule.
    pub scheduled_check: Option<CheckPolicy>,
    /// Prune on its own schedule.
    pub prune: Option<PrunePolicy>,
    /// Whether the service follows the MongoDB oplog.
    pub follow_oplog: bool,
    /// Commands around a run.
    pub hooks: hooks::Hooks,
    /// Notification targets' names.
    pub notify: Vec<String>,
    /// No successful run for this long is the `stale` event.
    #[serde(serialize_with = "ser_secs")]
    pub stale_after: Option<Duration>,
}

impl Plan {
    /// The tag every snapshot of this plan carries.
    pub fn tag(&self) -> String {
        format!("plan:{}", self.name)
    }
}

fn ser_secs<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

/// A plan's MongoDB source.
#[derive(Clone, Debug, Serialize)]
pub struct MongoPlan {
    /// Where the connection string comes from.
    pub uri: UriSource,
    /// Only these databases (empty: all user databases).
    pub databases: Vec<String>,
    /// Only these namespaces ("db.coll").
    pub collections: Vec<String>,
}

/// A plan's retention.
#[derive(Clone, Debug, Serialize)]
pub struct Retention {
    /// The keep rules.
    pub policy: RetentionPolicy,
    /// Prune after forgetting (false when the plan prunes on a schedule).
    pub prune: bool,
    /// Trim operation-log records older than this (duration text).
    pub keep_log: Option<String>,
}

impl Config {
    /// Where the file is: `explicit` (`--config`, `REPO_CONFIG`), else
    /// `$XDG_CONFIG_HOME/repo/config.toml`.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("repo").join("config.toml"))
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config file {}", path.display()), e))?;
        Self::parse(&text, path)
    }

    /// Checks `text` (the contents of `path`, named in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        check::parse(text, path)
    }

    /// The plan called `name`.
    pub fn plan(&self, name: &str) -> Result<&Plan> {
        self.plans.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.plans.keys().map(String::as_str).collect();
            Error::Invalid(format!(
                "{}: no plan {name:?}{}",
                self.path.display(),
                check::suggest(name, &known)
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_else(|| format!(" (plans: {})", known.join(", ")))
            ))
        })
    }

    /// The repository called `name`.
    pub fn repository(&self, name: &str) -> Result<&RepositoryConf> {
        self.repositories.get(name).ok_or_else(|| {
            Error::Invalid(format!("{}: no repository {name:?}", self.path.display()))
        })
    }
}

/// Opens the repository `conf` describes: its location with its storage options, its
/// password from its source, or `fallback` when the config gives none.
#[cfg(feature = "local-index")]
pub fn open_repository(
    conf: &RepositoryConf,
    cache_root: &Path,
    fallback: Option<&crate::secret::Password>,
) -> Result<crate::repository::Repository> {
    let backend = crate::backend::open(&conf.location, &conf.storage)?;
    if !backend.exists(crate::config::CONFIG_PATH)? {
        return Err(Error::NoRepository(format!(
            "{} (repository {:?})",
            conf.location, conf.name
        )));
    }
    let password = match (conf.password.read()?, fallback) {
        (Some(p), _) => p,
        (None, Some(p)) => p.clone(),
        (None, None) => {
            return Err(Error::Invalid(format!(
                "repository {:?} has no password-file, password-env or password-command, and no password was given",
                conf.name
            )))
        }
    };
    crate::repository::Repository::open(backend, password.expose(), cache_root)
}
