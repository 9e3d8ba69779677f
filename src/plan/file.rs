//! The config file as written: TOML, kebab-case keys, every table closed to unknown keys.
//! [`super::Config::parse`] turns this into checked plans; nothing here is trusted yet.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    /// Repositories by name.
    #[serde(default)]
    pub repositories: BTreeMap<String, Spanned<RepositoryFile>>,
    /// Plans by name.
    #[serde(default)]
    pub plans: BTreeMap<String, Spanned<PlanFile>>,
    /// Notification targets by name.
    #[serde(default)]
    pub notify: BTreeMap<String, Spanned<NotifyFile>>,
    /// `repo serve`'s settings.
    pub service: Option<Spanned<ServiceFile>>,
}

/// `[service]`: how `repo serve` listens and runs jobs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceFile {
    /// Address and port (default 127.0.0.1:8440).
    pub listen: Option<Spanned<String>>,
    /// Jobs run at once (default 2).
    pub max_jobs: Option<Spanned<usize>>,
    /// Scheduled runs start up to this much later, at random ("5m").
    pub jitter: Option<Spanned<String>>,
    /// How long SIGTERM waits for running jobs before cancelling them (default "2m").
    pub grace: Option<Spanned<String>>,
    /// How long a job waits for a conflicting repository lock (default "10m").
    pub lock_wait: Option<Spanned<String>>,
    /// Directories API restores may write into (none: file restores are refused).
    #[serde(default)]
    pub restore_roots: Vec<Spanned<String>>,
    /// PEM certificate chain and key: serve HTTPS.
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    /// The repository API calls use when they name none (default: the only one).
    pub repository: Option<Spanned<String>>,
    /// How often oplog followers seal a slice (default "60s"): at most this much
    /// point-in-time history is lost if the host dies.
    pub follow_seal: Option<Spanned<String>>,
    /// Alert when a follower's capture falls this far behind (default "10m").
    pub follow_lag_alert: Option<Spanned<String>>,
}

/// `[repositories.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RepositoryFile {
    /// A directory, `local:DIR`, `s3:…`, `gs:…`, `azure:…` or `sftp:…`.
    pub location: Spanned<String>,
    /// The password's first line is read from this file.
    pub password_file: Option<Spanned<String>>,
    /// The password is this environment variable's value.
    pub password_env: Option<Spanned<String>>,
    /// The password is the first line this shell command prints.
    pub password_command: Option<Spanned<String>>,
    /// Storage options, as the flags of the same names.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub virtual_host_style: bool,
    pub storage_class: Option<String>,
    pub connections: Option<Spanned<usize>>,
    pub retries: Option<usize>,
    pub limit_upload: Option<Spanned<String>>,
    pub limit_download: Option<Spanned<String>>,
    pub ssh_key: Option<String>,
    #[serde(default)]
    pub ssh_accept_new_host: bool,
}

/// `[plans.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PlanFile {
    /// The repository's name in `[repositories]`.
    pub repository: Spanned<String>,
    #[serde(default)]
    pub paths: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub exclude_if_present: Vec<String>,
    #[serde(default)]
    pub one_file_system: bool,
    pub mongodb: Option<Spanned<MongoFile>>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub schedule: Option<Spanned<String>>,
    pub retention: Option<Spanned<RetentionFile>>,
    #[serde(default)]
    pub copy_to: Vec<Spanned<String>>,
    pub check: Option<Spanned<CheckFile>>,
    /// A check on its own schedule.
    pub scheduled_check: Option<Spanned<ScheduledCheckFile>>,
    /// Prune on a schedule of its own.
    pub prune: Option<Spanned<PruneFile>>,
    /// Whether the service follows the MongoDB oplog for point-in-time recovery.
    #[serde(default)]
    pub follow_oplog: bool,
    pub hooks: Option<HooksFile>,
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
    /// A run that has not succeeded for this long is stale (e.g. "26h").
    pub stale_after: Option<Spanned<String>>,
}

/// `mongodb = { … }` of a plan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MongoFile {
    /// Environment variable holding the connection string.
    pub uri_env: Option<String>,
    /// File whose first line is the connection string.
    pub uri_file: Option<String>,
    #[serde(default)]
    pub databases: Vec<String>,
    #[serde(default)]
    pub collections: Vec<String>,
}

/// `retention = { … }`: the `forget` keep rules, and whether to prune after.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetentionFile {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<String>,
    #[serde(default)]
    pub keep_tags: Vec<String>,
    /// Prune after forgetting (default: true).
    pub prune: Option<bool>,
    /// Trim operation-log records older than this ("400d").
    pub keep_log: Option<Spanned<String>>,
}

/// `check = { … }`: what to verify, after each run or on a schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckFile {
    /// Check the structure (default: true).
    pub enabled: Option<bool>,
    /// Also read and verify every pack.
    #[serde(default)]
    pub read_data: bool,
    /// Read and verify some packs: "10%", "2/5", "5GiB".
    pub read_data_subset: Option<Spanned<String>>,
}

/// `scheduled-check = { … }`: a check on a schedule of its own (the service runs it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScheduledCheckFile {
    /// When.
    pub schedule: Spanned<String>,
    /// Also read and verify every pack.
    #[serde(default)]
    pub read_data: bool,
    /// Read and verify some packs: "10%", "2/5", "5GiB".
    pub read_data_subset: Option<Spanned<String>>,
}

/// `prune = { … }`: prune on a schedule instead of after each run's retention.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PruneFile {
    /// When.
    pub schedule: Spanned<String>,
    /// Repack packs more than this unused (default 5%).
    pub max_unused: Option<Spanned<String>>,
}

/// `hooks = { … }`: shell commands around a run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HooksFile {
    pub before: Option<String>,
    pub after: Option<String>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    /// Per hook (default "5m").
    pub timeout: Option<Spanned<String>>,
}

/// `[notify.NAME]`: one target, and which events it gets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifyFile {
    /// POST the event as JSON here.
    pub webhook: Option<Spanned<String>>,
    /// Sign webhook bodies with HMAC-SHA256 using the secret in this environment variable.
    pub webhook_secret_env: Option<String>,
    /// Run this shell command with the event in the environment and as JSON on stdin.
    pub command: Option<String>,
    /// Healthchecks-style ping URL (`/start`, `/fail` appended).
    pub healthchecks: Option<Spanned<String>>,
    /// Email over SMTP.
    pub email: Option<Spanned<EmailFile>>,
    /// Events: failure, success, recovered, warnings, stale (default: failure, recovered, stale).
    pub on: Option<Vec<Spanned<String>>>,
    /// The message text, with placeholders such as `{plan}` and `{error}`.
    pub template: Option<Spanned<String>>,
}

/// `email = { … }` of a notify target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EmailFile {
    pub to: Vec<String>,
    pub from: String,
    pub server: String,
    pub port: Option<u16>,
    /// starttls (default), tls or none.
    pub security: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    /// Trust the server's certificate when this PEM file's certificates vouch for it
    /// (a relay with a private CA), besides the usual roots.
    pub ca_file: Option<String>,
}
