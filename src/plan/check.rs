//! From TOML text to a checked [`Config`]: syntax and unknown keys first (serde), then
//! every value and every name one table gives another. All problems are reported at once,
//! each as `file:line:column: message`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::email::{Email, Security};
use super::file::{self, File};
use super::notify::{Event, Target};
use super::{hooks, Config, MongoPlan, PasswordSource, Plan, RepositoryConf};
use super::{Retention, Schedule, UriSource};
use crate::backend::target::ObjectOptions;
use crate::error::{Error, Result};
use crate::retention::RetentionPolicy;
use crate::source::exclude::ExcludeSettings;

/// Problems found so far, with where they are.
pub(super) struct Problems<'a> {
    text: &'a str,
    path: &'a Path,
    found: Vec<String>,
}

impl Problems<'_> {
    pub(super) fn at(&mut self, span: Range<usize>, msg: impl std::fmt::Display) {
        let (line, col) = line_col(self.text, span.start);
        self.found
            .push(format!("{}:{line}:{col}: {msg}", self.path.display()));
    }
}

/// 1-based line and column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The closest of `known` to `word`, when close enough to be a likely typo.
pub(super) fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(word.len()) / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`".
fn explain(message: &str) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((word, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match suggest(word, &known) {
        Some(s) => format!("unknown key `{word}` (did you mean `{s}`?)"),
        None => format!(
            "unknown key `{word}`; valid keys here: {}",
            known.join(", ")
        ),
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Config> {
    let raw: File = toml::from_str(text).map_err(|e| {
        let at = match e.span() {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                format!("{}:{l}:{c}", path.display())
            }
            None => path.display().to_string(),
        };
        Error::Invalid(format!("{at}: {}", explain(e.message())))
    })?;
    let mut p = Problems {
        text,
        path,
        found: Vec::new(),
    };
    let repositories = raw
        .repositories
        .iter()
        .filter_map(|(name, r)| Some((name.clone(), repository(&mut p, name, r)?)))
        .collect::<BTreeMap<_, _>>();
    let notify = raw
        .notify
        .iter()
        .filter_map(|(name, n)| Some((name.clone(), notify_target(&mut p, name, n)?)))
        .collect::<BTreeMap<_, _>>();
    let mut plans = BTreeMap::new();
    for (name, pl) in &raw.plans {
        if let Some(plan) = plan(&mut p, name, pl, &raw) {
            plans.insert(name.clone(), plan);
        }
    }
    let service = super::service::check(&mut p, raw.service.as_ref(), &repositories);
    if !p.found.is_empty() {
        return Err(Error::Invalid(p.found.join("\n")));
    }
    Ok(Config {
        path: path.to_path_buf(),
        repositories,
        plans,
        notify,
        service,
    })
}

fn name_ok(p: &mut Problems, span: Range<usize>, what: &str, name: &str) -> bool {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        p.at(
            span,
            format!("{what} name {name:?}: use letters, digits, - and _"),
        );
    }
    ok
}

fn repository(
    p: &mut Problems,
    name: &str,
    r: &Spanned<file::RepositoryFile>,
) -> Option<RepositoryConf> {
    if !name_ok(p, r.span(), "repository", name) {
        return None;
    }
    let f = r.get_ref();
    let sources: Vec<PasswordSource> = [
        f.password_file
            .as_ref()
            .map(|s| PasswordSource::File(PathBuf::from(s.get_ref()))),
        f.password_env
            .as_ref()
            .map(|s| PasswordSource::Env(s.get_ref().clone())),
        f.password_command
            .as_ref()
            .map(|s| PasswordSource::Command(s.get_ref().clone())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if sources.len() > 1 {
        p.at(
            r.span(),
            format!(
                "repository {name:?}: give one of password-file, password-env, password-command"
            ),
        );
    }
    let location = f.location.get_ref().trim().to_string();
    if location.is_empty() {
        p.at(f.location.span(), "location is empty");
    } else if let Err(e) =
        crate::backend::target::Target::parse(location.strip_prefix("local:").unwrap_or(&location))
    {
        p.at(f.location.span(), e);
    }
    let rate = |p: &mut Problems, v: &Option<Spanned<String>>| {
        v.as_ref()
            .and_then(|s| match crate::timespec::parse_size(s.get_ref()) {
                Ok(n) if n > 0 => Some(n),
                Ok(_) => {
                    p.at(s.span(), "must be above 0");
                    None
                }
                Err(e) => {
                    p.at(s.span(), e);
                    None
                }
            })
    };
    if let Some(c) = &f.connections {
        if *c.get_ref() == 0 {
            p.at(c.span(), "connections must be at least 1");
        }
    }
    let storage = ObjectOptions {
        endpoint: f.endpoint.clone(),
        region: f.region.clone(),
        virtual_host_style: f.virtual_host_style,
        storage_class: f.storage_class.clone(),
        connections: f.connections.as_ref().map(|c| *c.get_ref()),
        retries: f.retries,
        limit_upload: rate(p, &f.limit_upload),
        limit_download: rate(p, &f.limit_download),
        ssh_key: f.ssh_key.clone(),
        ssh_accept_new_host: f.ssh_accept_new_host,
        ..Default::default()
    };
    Some(RepositoryConf {
        name: name.to_string(),
        location,
        password: sources.into_iter().next().unwrap_or(PasswordSource::Ask),
        storage,
    })
}

fn notify_target(p: &mut Problems, name: &str, n: &Spanned<file::NotifyFile>) -> Option<Target> {
    if !name_ok(p, n.span(), "notify", name) {
        return None;
    }
    let f = n.get_ref();
    let url = |p: &mut Problems, v: &Option<Spanned<String>>| {
        v.as_ref().and_then(|s| {
            let u = s.get_ref();
            if u.starts_with("http://") || u.starts_with("https://") {
                Some(u.clone())
            } else {
                p.at(s.span(), format!("{u:?} is not an http:// or https:// URL"));
                None
            }
        })
    };
    let webhook = url(p, &f.webhook);
    let healthchecks = url(p, &f.healthchecks);
    let email = f.email.as_ref().and_then(|e| email(p, e));
    if webhook.is_none() && healthchecks.is_none() && f.command.is_none() && f.email.is_none() {
        p.at(
            n.span(),
            format!("notify {name:?}: give webhook, command, email or healthchecks"),
        );
    }
    let mut on = Vec::new();
    for e in f.on.iter().flatten() {
        match Event::parse(e.get_ref()) {
            Some(ev) => on.push(ev),
            None => {
                let known = Event::NAMES;
                let hint = suggest(e.get_ref(), known)
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_else(|| format!(" (events: {})", known.join(", ")));
                p.at(e.span(), format!("unknown event {:?}{hint}", e.get_ref()));
            }
        }
    }
    if f.on.is_none() {
        on = vec![Event::Failure, Event::Recovered, Event::Stale];
    }
    if let Some(t) = &f.template {
        for name in super::notify::placeholders(t.get_ref()) {
            if !super::notify::PLACEHOLDERS.contains(&name) {
                let hint = suggest(name, super::notify::PLACEHOLDERS)
                    .map(|s| format!(" (did you mean {{{s}}}?)"))
                    .unwrap_or_else(|| {
                        format!(" (known: {})", super::notify::PLACEHOLDERS.join(", "))
                    });
                p.at(
                    t.span(),
                    format!("template: unknown placeholder {{{name}}}{hint}"),
                );
            }
        }
    }
    Some(Target {
        name: name.to_string(),
        webhook,
        webhook_secret_env: f.webhook_secret_env.clone(),
        command: f.command.clone(),
        healthchecks,
        email,
        on,
        template: f.template.as_ref().map(|t| t.get_ref().clone()),
    })
}

fn email(p: &mut Problems, e: &Spanned<file::EmailFile>) -> Option<Email> {
    let f = e.get_ref();
    let mut ok = true;
    for a in f.to.iter().chain([&f.from]) {
        if !crate::plan::email::valid_address(a) {
            p.at(e.span(), format!("email: {a:?} is not an email address"));
            ok = false;
        }
    }
    if f.to.is_empty() {
        p.at(e.span(), "email: `to` names no recipient");
        ok = false;
    }
    let security = match f.security.as_deref().map(Security::parse) {
        None => Security::Starttls,
        Some(Some(s)) => s,
        Some(None) => {
            p.at(e.span(), "email: security is starttls, tls or none");
            return None;
        }
    };
    if f.password_env.is_some() && f.password_file.is_some() {
        p.at(
            e.span(),
            "email: give password-env or password-file, not both",
        );
        ok = false;
    }
    if f.ca_file.is_some() && security == Security::None {
        p.at(e.span(), "email: ca-file needs security = starttls or tls");
        ok = false;
    }
    ok.then(|| Email {
        ca_file: f.ca_file.as_ref().map(PathBuf::from),
        to: f.to.clone(),
        from: f.from.clone(),
        server: f.server.clone(),
        port: f.port,
        security,
        username: f.username.clone(),
        password: match (&f.password_env, &f.password_file) {
            (Some(v), _) => PasswordSource::Env(v.clone()),
            (None, Some(path)) => PasswordSource::File(PathBuf::from(path)),
            (None, None) => PasswordSource::Ask,
        },
    })
}

/// Checks that `r` names one of `known`; says which it may have meant.
pub(super) fn reference(p: &mut Problems, r: &Spanned<String>, what: &str, known: &[&str]) -> bool {
    if known.contains(&r.get_ref().as_str()) {
        return true;
    }
    let hint = match suggest(r.get_ref(), known) {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None if known.is_empty() => format!(" (the file defines no {what})"),
        None => format!(" ({what}: {})", known.join(", ")),
    };
    p.at(r.span(), format!("no {what} {:?}{hint}", r.get_ref()));
    false
}

fn duration(p: &mut Problems, s: &Spanned<String>) -> Option<std::time::Duration> {
    match crate::timespec::parse_duration(s.get_ref()).map(|d| d.to_std()) {
        Ok(Ok(d)) if !d.is_zero() => Some(d),
        Ok(_) => {
            p.at(s.span(), "must be a positive duration");
            None
        }
        Err(e) => {
            p.at(s.span(), e);
            None
        }
    }
}

fn plan(p: &mut Problems, name: &str, pl: &Spanned<file::PlanFile>, raw: &File) -> Option<Plan> {
    if !name_ok(p, pl.span(), "plan", name) {
        return None;
    }
    let f = pl.get_ref();
    let repos: Vec<&str> = raw.repositories.keys().map(String::as_str).collect();
    reference(p, &f.repository, "repositories", &repos);
    for c in &f.copy_to {
        if reference(p, c, "repositories", &repos) && c.get_ref() == f.repository.get_ref() {
            p.at(c.span(), "copy-to names the plan's own repository");
        }
    }
    if f.follow_oplog && f.mongodb.is_none() {
        p.at(pl.span(), "follow-oplog needs a mongodb source");
    }
    let targets: Vec<&str> = raw.notify.keys().map(String::as_str).collect();
    for n in &f.notify {
        reference(p, n, "notify targets", &targets);
    }
    let mut paths = Vec::new();
    for s in &f.paths {
        let path = PathBuf::from(s.get_ref());
        if !path.is_absolute() {
            p.at(
                s.span(),
                format!("{:?}: paths must be absolute", s.get_ref()),
            );
        }
        paths.push(path);
    }
    let mongodb = f.mongodb.as_ref().and_then(|m| mongo(p, m));
    if paths.is_empty() && f.mongodb.is_none() {
        p.at(
            pl.span(),
            format!("plan {name:?} backs up nothing: give paths or mongodb"),
        );
    }
    let schedule = f
        .schedule
        .as_ref()
        .and_then(|s| match Schedule::parse(s.get_ref()) {
            Ok(s) => Some(s),
            Err(e) => {
                p.at(s.span(), e);
                None
            }
        });
    let prune = super::maintenance::prune(p, f.prune.as_ref());
    let retention = f
        .retention
        .as_ref()
        .and_then(|r| retention(p, r, f.prune.is_some()));
    let hooks = f
        .hooks
        .as_ref()
        .map_or_else(hooks::Hooks::default, |h| hooks::Hooks {
            before: h.before.clone(),
            after: h.after.clone(),
            on_success: h.on_success.clone(),
            on_failure: h.on_failure.clone(),
            timeout: h
                .timeout
                .as_ref()
                .and_then(|t| duration(p, t))
                .unwrap_or(hooks::DEFAULT_TIMEOUT),
        });
    Some(Plan {
        name: name.to_string(),
        repository: f.repository.get_ref().clone(),
        paths,
        excludes: ExcludeSettings {
            patterns: f.exclude.clone(),
            if_present: f.exclude_if_present.clone(),
            one_file_system: f.one_file_system,
        },
        mongodb,
        tags: f.tags.clone(),
        host: f.host.clone(),
        schedule,
        retention,
        copy_to: f.copy_to.iter().map(|c| c.get_ref().clone()).collect(),
        check: super::maintenance::check(p, f.check.as_ref()),
        scheduled_check: super::maintenance::scheduled_check(p, f.scheduled_check.as_ref()),
        prune,
        follow_oplog: f.follow_oplog,
        hooks,
        notify: f.notify.iter().map(|n| n.get_ref().clone()).collect(),
        stale_after: f.stale_after.as_ref().and_then(|s| duration(p, s)),
    })
}

fn mongo(p: &mut Problems, m: &Spanned<file::MongoFile>) -> Option<MongoPlan> {
    let f = m.get_ref();
    let uri = match (&f.uri_env, &f.uri_file) {
        (Some(v), None) => UriSource::Env(v.clone()),
        (None, Some(path)) => UriSource::File(PathBuf::from(path)),
        _ => {
            p.at(
                m.span(),
                "mongodb: give exactly one of uri-env or uri-file (a connection string is never written in this file)",
            );
            return None;
        }
    };
    for c in &f.collections {
        if !c.contains('.') {
            p.at(
                m.span(),
                format!("mongodb collections: {c:?} is not \"db.collection\""),
            );
        }
    }
    Some(MongoPlan {
        uri,
        databases: f.databases.clone(),
        collections: f.collections.clone(),
    })
}

/// `retention`; with a prune schedule (`scheduled_prune`) it does not prune itself.
fn retention(
    p: &mut Problems,
    r: &Spanned<file::RetentionFile>,
    scheduled_prune: bool,
) -> Option<Retention> {
    let f = r.get_ref();
    if scheduled_prune && f.prune == Some(true) {
        p.at(
            r.span(),
            "retention: prune = true and a prune schedule: prune after each run or on the schedule, not both",
        );
    }
    let policy = RetentionPolicy {
        keep_last: f.keep_last,
        keep_hourly: f.keep_hourly,
        keep_daily: f.keep_daily,
        keep_weekly: f.keep_weekly,
        keep_monthly: f.keep_monthly,
        keep_yearly: f.keep_yearly,
        keep_within: f.keep_within.clone(),
        keep_tags: f.keep_tags.clone(),
    };
    if let Err(e) = policy.validate() {
        p.at(r.span(), format!("retention: {e}"));
        return None;
    }
    if policy.is_empty() && f.keep_log.is_none() {
        p.at(r.span(), "retention: give at least one keep-* rule");
        return None;
    }
    let keep_log = f.keep_log.as_ref().and_then(|k| {
        duration(p, k)?;
        Some(k.get_ref().clone())
    });
    Some(Retention {
        policy,
        prune: f.prune.unwrap_or(!scheduled_prune),
        keep_log,
    })
}
