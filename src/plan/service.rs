//! `[service]`: where `repo serve` listens, how many jobs it runs at once, how it shuts
//! down, where API restores may write, and its TLS certificate.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;
use toml::Spanned;

use super::check::Problems;
use super::file::ServiceFile;
use super::RepositoryConf;

/// The service's settings, defaults filled in.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceConf {
    /// Where to listen (`--listen` overrides).
    pub listen: SocketAddr,
    /// Jobs that run at once; more wait in the queue.
    pub max_jobs: usize,
    /// Scheduled runs start up to this many seconds late, at random.
    pub jitter_secs: u64,
    /// Seconds SIGTERM waits for running jobs before cancelling them.
    pub grace_secs: u64,
    /// Seconds a job waits for a conflicting repository lock.
    pub lock_wait_secs: u64,
    /// Directories API file restores may write into (canonical, absolute).
    pub restore_roots: Vec<PathBuf>,
    /// PEM certificate chain and private key, for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The repository API calls use when they name none.
    pub repository: Option<String>,
    /// Seconds between the slices an oplog follower seals.
    pub follow_seal_secs: u64,
    /// Seconds of capture lag that raise an alert.
    pub follow_lag_alert_secs: u64,
}

impl Default for ServiceConf {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8440)),
            max_jobs: 2,
            jitter_secs: 0,
            grace_secs: 120,
            lock_wait_secs: 600,
            restore_roots: Vec::new(),
            tls: None,
            repository: None,
            follow_seal_secs: 60,
            follow_lag_alert_secs: 600,
        }
    }
}

/// A duration in whole seconds; zero allowed (no jitter, no grace, no waiting).
fn secs(p: &mut Problems, s: &Option<Spanned<String>>) -> Option<u64> {
    let s = s.as_ref()?;
    match crate::timespec::parse_duration(s.get_ref()).map(|d| d.to_std()) {
        Ok(Ok(d)) => Some(d.as_secs()),
        Ok(Err(_)) => {
            p.at(s.span(), "must not be negative");
            None
        }
        Err(e) => {
            p.at(s.span(), e);
            None
        }
    }
}

fn absolute(p: &mut Problems, s: &Spanned<String>) -> Option<PathBuf> {
    let path = PathBuf::from(s.get_ref());
    if path.is_absolute() {
        Some(path)
    } else {
        p.at(
            s.span(),
            format!("{:?}: paths must be absolute", s.get_ref()),
        );
        None
    }
}

/// Checks `[service]` (absent: the defaults).
pub(super) fn check(
    p: &mut Problems,
    raw: Option<&Spanned<ServiceFile>>,
    repositories: &BTreeMap<String, RepositoryConf>,
) -> ServiceConf {
    let mut c = ServiceConf::default();
    let Some(raw) = raw else { return c };
    let f = raw.get_ref();
    if let Some(l) = &f.listen {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => c.listen = a,
            Err(_) => p.at(
                l.span(),
                format!(
                    "listen {:?}: want ADDRESS:PORT (e.g. \"127.0.0.1:8440\")",
                    l.get_ref()
                ),
            ),
        }
    }
    if let Some(n) = &f.max_jobs {
        if *n.get_ref() == 0 {
            p.at(n.span(), "max-jobs must be at least 1");
        } else {
            c.max_jobs = *n.get_ref();
        }
    }
    c.jitter_secs = secs(p, &f.jitter).unwrap_or(c.jitter_secs);
    c.grace_secs = secs(p, &f.grace).unwrap_or(c.grace_secs);
    c.lock_wait_secs = secs(p, &f.lock_wait).unwrap_or(c.lock_wait_secs);
    c.follow_seal_secs = secs(p, &f.follow_seal)
        .filter(|s| *s > 0)
        .unwrap_or(c.follow_seal_secs);
    c.follow_lag_alert_secs = secs(p, &f.follow_lag_alert).unwrap_or(c.follow_lag_alert_secs);
    c.restore_roots = f
        .restore_roots
        .iter()
        .filter_map(|r| absolute(p, r))
        .collect();
    match (&f.tls_cert, &f.tls_key) {
        (Some(cert), Some(key)) => {
            if let (Some(c1), Some(k1)) = (absolute(p, cert), absolute(p, key)) {
                c.tls = Some((c1, k1));
            }
        }
        (Some(s), None) | (None, Some(s)) => p.at(s.span(), "tls-cert and tls-key go together"),
        (None, None) => {}
    }
    if let Some(r) = &f.repository {
        let known: Vec<&str> = repositories.keys().map(String::as_str).collect();
        if super::check::reference(p, r, "repositories", &known) {
            c.repository = Some(r.get_ref().clone());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use crate::plan::Config;
    use std::path::Path;

    #[test]
    fn defaults_values_and_errors() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c.service.listen.port(), 8440);
        assert_eq!(c.service.max_jobs, 2);
        let c = Config::parse(
            "[service]\nlisten = \"0.0.0.0:9000\"\nmax-jobs = 4\njitter = \"30s\"\nrestore-roots = [\"/srv/r\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.service.listen.port(), 9000);
        assert_eq!((c.service.max_jobs, c.service.jitter_secs), (4, 30));
        let e = Config::parse(
            "[service]\nlisten = \"nowhere\"\nmax-jobs = 0\nrestore-roots = [\"rel\"]\ntls-cert = \"/c\"\nrepository = \"x\"\nlistn = 1\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("listn"), "{e}");
        let e = Config::parse(
            "[service]\nlisten = \"nowhere\"\nmax-jobs = 0\nrestore-roots = [\"rel\"]\ntls-cert = \"/c\"\nrepository = \"x\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        for want in [
            "c.toml:2:",
            "max-jobs",
            "absolute",
            "go together",
            "no repositories \"x\"",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
    }
}
