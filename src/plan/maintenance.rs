//! A plan's repository maintenance: the check after each run (`check`: structure, all
//! the data or a subset), a check on its own schedule (`scheduled-check`), and prune
//! (after retention, or on its own schedule). A subset read after every run, everything
//! read weekly and a monthly prune are the usual shape: checks and prunes are
//! repository-wide and cost far more than a backup.

use serde::Serialize;
use toml::Spanned;

use super::check::Problems;
use super::file::{CheckFile, PruneFile, ScheduledCheckFile};
use super::Schedule;
use crate::subset::DataSubset;

/// What a plan checks, and when.
#[derive(Clone, Debug, Serialize)]
pub struct CheckPolicy {
    /// Check at all.
    pub enabled: bool,
    /// Read every pack too.
    pub read_data: bool,
    /// Read only these packs.
    pub read_data_subset: Option<DataSubset>,
    /// Its own schedule (`scheduled-check`); `None`: after each run (`check`).
    pub schedule: Option<Schedule>,
}

impl Default for CheckPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            read_data: false,
            read_data_subset: None,
            schedule: None,
        }
    }
}

impl CheckPolicy {
    /// The check this policy asks for.
    #[cfg(feature = "local-index")]
    pub fn request(&self) -> crate::ops::check::CheckRequest {
        crate::ops::check::CheckRequest {
            read_data: self.read_data,
            read_data_subset: self.read_data_subset,
        }
    }

    /// "structure only", "reading every pack", "reading a subset of the packs (10%)".
    pub fn describe_reads(&self) -> String {
        match (&self.read_data_subset, self.read_data) {
            (Some(s), _) => format!("reading a subset of the packs ({s})"),
            (None, true) => "reading every pack".into(),
            (None, false) => "structure only".into(),
        }
    }
}

/// When a plan prunes on its own schedule.
#[derive(Clone, Debug, Serialize)]
pub struct PrunePolicy {
    /// Its schedule.
    pub schedule: Schedule,
    /// Repack packs more than this fraction unused.
    pub max_unused: f64,
}

impl PrunePolicy {
    /// The prune this policy asks for.
    #[cfg(feature = "local-index")]
    pub fn request(&self) -> crate::ops::prune::PruneRequest {
        crate::ops::prune::PruneRequest {
            max_unused: self.max_unused,
            ..Default::default()
        }
    }
}

fn schedule(p: &mut Problems, s: &Spanned<String>) -> Option<Schedule> {
    match Schedule::parse(s.get_ref()) {
        Ok(s) => Some(s),
        Err(e) => {
            p.at(s.span(), e);
            None
        }
    }
}

fn subset(p: &mut Problems, s: Option<&Spanned<String>>) -> Option<DataSubset> {
    let s = s?;
    DataSubset::parse(s.get_ref())
        .map_err(|e| p.at(s.span(), e))
        .ok()
}

fn not_both(p: &mut Problems, span: std::ops::Range<usize>, key: &str, both: bool) {
    if both {
        p.at(
            span,
            format!("{key}: give read-data (every pack) or read-data-subset (some), not both"),
        );
    }
}

/// `check = { … }`: after each run.
pub(super) fn check(p: &mut Problems, f: Option<&Spanned<CheckFile>>) -> CheckPolicy {
    let Some(f) = f else {
        return CheckPolicy::default();
    };
    let c = f.get_ref();
    not_both(
        p,
        f.span(),
        "check",
        c.read_data && c.read_data_subset.is_some(),
    );
    CheckPolicy {
        enabled: c.enabled.unwrap_or(true),
        read_data: c.read_data,
        read_data_subset: subset(p, c.read_data_subset.as_ref()),
        schedule: None,
    }
}

/// `scheduled-check = { … }`: on its own schedule.
pub(super) fn scheduled_check(
    p: &mut Problems,
    f: Option<&Spanned<ScheduledCheckFile>>,
) -> Option<CheckPolicy> {
    let f = f?;
    let c = f.get_ref();
    not_both(
        p,
        f.span(),
        "scheduled-check",
        c.read_data && c.read_data_subset.is_some(),
    );
    Some(CheckPolicy {
        enabled: true,
        read_data: c.read_data,
        read_data_subset: subset(p, c.read_data_subset.as_ref()),
        schedule: Some(schedule(p, &c.schedule)?),
    })
}

/// `prune = { … }`.
pub(super) fn prune(p: &mut Problems, f: Option<&Spanned<PruneFile>>) -> Option<PrunePolicy> {
    let f = f?;
    let c = f.get_ref();
    let max_unused = match &c.max_unused {
        // The same default as `repo prune`.
        None => 0.05,
        Some(m) => match crate::timespec::parse_fraction(m.get_ref(), "max-unused") {
            Ok(v) => v,
            Err(e) => {
                p.at(m.span(), e);
                return None;
            }
        },
    };
    Some(PrunePolicy {
        schedule: schedule(p, &c.schedule)?,
        max_unused,
    })
}
