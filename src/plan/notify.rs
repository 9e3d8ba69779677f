//! Telling people how runs went: webhooks (JSON POST, retried with backoff, optionally
//! signed), commands (the event as JSON on stdin and in `REPO_*` variables) and
//! Healthchecks-style ping URLs. A target gets the events it lists in `on`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// A run failed.
    Failure,
    /// A run succeeded.
    Success,
    /// A run succeeded after the previous one failed.
    Recovered,
    /// A run succeeded with warnings (unreadable files, say).
    Warnings,
    /// No successful run within the plan's `stale-after`.
    Stale,
}

impl Event {
    /// Names as the config file writes them.
    pub const NAMES: &'static [&'static str] =
        &["failure", "success", "recovered", "warnings", "stale"];

    /// The event called `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "failure" => Event::Failure,
            "success" => Event::Success,
            "recovered" => Event::Recovered,
            "warnings" => Event::Warnings,
            "stale" => Event::Stale,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A notification target.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// Its name in the file.
    pub name: String,
    /// Webhook URL (shown masked: it often carries a token).
    #[serde(serialize_with = "masked")]
    pub webhook: Option<String>,
    /// Environment variable with the HMAC key for `X-Repo-Signature`.
    pub webhook_secret_env: Option<String>,
    /// Command to run.
    pub command: Option<String>,
    /// Ping URL (shown masked).
    #[serde(serialize_with = "masked")]
    pub healthchecks: Option<String>,
    /// Email over SMTP.
    pub email: Option<super::email::Email>,
    /// Events it gets.
    pub on: Vec<Event>,
    /// Its own message text (see [`PLACEHOLDERS`]); default: the standard one-liner.
    pub template: Option<String>,
}

/// What a message template may name, as `{name}`.
pub const PLACEHOLDERS: &[&str] = &[
    "plan",
    "task",
    "host",
    "event",
    "status",
    "error",
    "snapshot",
    "duration",
    "bytes_added",
    "operation",
    "status_command",
];

/// The `{name}`s in `template`, in order.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    out
}

/// `template` with every placeholder replaced by the notice's value.
fn render(template: &str, n: &Notice) -> String {
    let mut s = template.to_string();
    let values = [
        ("plan", n.plan.clone()),
        ("task", n.task.clone()),
        ("host", n.host.clone()),
        ("event", n.event.name().to_string()),
        ("status", n.status.clone()),
        ("error", n.error.clone().unwrap_or_default()),
        ("snapshot", n.snapshot.clone().unwrap_or_default()),
        ("duration", format!("{:.1}s", n.seconds)),
        ("bytes_added", n.bytes_added.to_string()),
        ("operation", n.operation.clone()),
        ("status_command", format!("repo status {}", n.operation)),
    ];
    for (k, v) in values {
        s = s.replace(&format!("{{{k}}}"), &v);
    }
    s
}

/// `https://host/…`: the scheme and host of a URL, the rest hidden.
pub fn mask_url(u: &str) -> String {
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

fn masked<S: serde::Serializer>(u: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_some(&mask_url(u)),
        None => s.serialize_none(),
    }
}

/// What a target is told.
#[derive(Clone, Debug, Serialize)]
pub struct Notice {
    pub event: Event,
    pub plan: String,
    /// backup, check or prune (a plan's own run), follow (its oplog follower).
    pub task: String,
    pub host: String,
    /// The run's operation id (`repo status ID`).
    pub operation: String,
    /// ok, warnings, failed or skipped.
    pub status: String,
    pub error: Option<String>,
    pub snapshot: Option<String>,
    pub seconds: f64,
    pub bytes_added: u64,
    /// One line for people.
    pub message: String,
}

impl Notice {
    /// The `REPO_*` variables a command target gets.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REPO_EVENT", self.event.name().to_string()),
            ("REPO_PLAN", self.plan.clone()),
            ("REPO_TASK", self.task.clone()),
            ("REPO_OPERATION_ID", self.operation.clone()),
            ("REPO_STATUS", self.status.clone()),
            ("REPO_MESSAGE", self.message.clone()),
            ("REPO_ERROR", self.error.clone().unwrap_or_default()),
            (
                "REPO_SNAPSHOT_ID",
                self.snapshot.clone().unwrap_or_default(),
            ),
        ]
    }
}

/// How one delivery went (reported in the run's report; never holds a URL).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub target: String,
    pub via: String,
    pub event: Event,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sends `notice` to `target` if it wants that event (Healthchecks pings go out for every
/// run: start is sent by the caller with [`ping_start`], then success or fail here).
pub fn deliver(target: &Target, notice: &Notice) -> Vec<Delivery> {
    let mut own = notice.clone();
    if let Some(t) = &target.template {
        own.message = render(t, notice);
    }
    let notice = &own;
    let mut out = Vec::new();
    let wanted = target.on.contains(&notice.event);
    let mut record = |via: &str, r: Result<(), String>| {
        out.push(Delivery {
            target: target.name.clone(),
            via: via.to_string(),
            event: notice.event,
            ok: r.is_ok(),
            error: r.err(),
        })
    };
    if let Some(url) = &target.healthchecks {
        // One ping per run, with its main event (not recovered or stale as well).
        if matches!(
            notice.event,
            Event::Success | Event::Warnings | Event::Failure
        ) {
            // A skipped run is a failure too.
            let url = match notice.event {
                Event::Failure => format!("{}/fail", url.trim_end_matches('/')),
                _ => url.clone(),
            };
            record("healthchecks", post(&url, notice, None));
        }
    }
    if !wanted {
        return out;
    }
    if let Some(url) = &target.webhook {
        let key = target
            .webhook_secret_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok());
        record("webhook", post(url, notice, key.as_deref()));
    }
    if let Some(cmd) = &target.command {
        record("command", command(cmd, notice));
    }
    if let Some(mail) = &target.email {
        record("email", mail.send(notice));
    }
    out
}

/// Tells a Healthchecks-style target that a run started.
pub fn ping_start(target: &Target, notice: &Notice) -> Option<Delivery> {
    let url = target.healthchecks.as_ref()?;
    let r = post(
        &format!("{}/start", url.trim_end_matches('/')),
        notice,
        None,
    );
    Some(Delivery {
        target: target.name.clone(),
        via: "healthchecks".to_string(),
        event: notice.event,
        ok: r.is_ok(),
        error: r.err(),
    })
}

/// POSTs the notice as JSON, up to four attempts with backoff; with `key`, signs the
/// body (`X-Repo-Signature: sha256=<hex HMAC>`). Errors never include the URL.
fn post(url: &str, notice: &Notice, key: Option<&str>) -> Result<(), String> {
    let body = serde_json::to_vec(notice).map_err(|e| e.to_string())?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 << attempt));
        }
        let mut req = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("repo/", env!("CARGO_PKG_VERSION")));
        if let Some(k) = key {
            req = req.header("X-Repo-Signature", format!("sha256={}", sign(k, &body)));
        }
        match req.send(&body[..]) {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                last = format!("{} answered {}", mask_url(url), r.status());
                // A client error will not change on retry.
                if r.status().is_client_error() && r.status().as_u16() != 429 {
                    break;
                }
            }
            Err(e) => last = format!("{}: {}", mask_url(url), strip_url(&e.to_string(), url)),
        }
    }
    Err(last)
}

/// `e` without `url` in it (transport errors may quote it, tokens included).
fn strip_url(e: &str, url: &str) -> String {
    e.replace(url, &mask_url(url))
}

/// Hex HMAC-SHA256 of `body` under `key`.
pub fn sign(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn command(cmd: &str, notice: &Notice) -> Result<(), String> {
    let body = serde_json::to_vec(notice).map_err(|e| e.to_string())?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(notice.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("running the notify command: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(&body);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the notify command failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked_and_signatures_are_hmac_sha256() {
        assert_eq!(
            mask_url("https://user:tok@hooks.example.net/services/T0/B0/secret?x=1"),
            "https://hooks.example.net/…"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(placeholders("{plan} x {error}{ y"), ["plan", "error"]);
        for (i, n) in Event::NAMES.iter().enumerate() {
            let e = Event::parse(n).unwrap();
            assert_eq!(e as usize, i);
            assert_eq!(e.name(), *n);
        }
    }
}
