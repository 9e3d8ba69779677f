//! A plan's repository maintenance: the check (after each run, or on its own schedule,
//! reading all, some or none of the data) and prune (after retention, or on its own
//! schedule). A weekly `check` reading a tenth of the packs and a monthly prune are the
//! usual shape: both are repository-wide and cost far more than a backup.

use serde::Serialize;
use toml::Spanned;

use super::check::Problems;
use super::file::{CheckFile, PruneFile};
use super::Schedule;
use crate::ops::check::DataSubset;

/// What a plan checks, and when.
#[derive(Clone, Debug, Serialize)]
pub struct CheckPolicy {
    /// Check at all.
    pub enabled: bool,
    /// Read every pack too.
    pub read_data: bool,
    /// Read only these packs.
    pub read_data_subset: Option<DataSubset>,
    /// Its own schedule; `None`: after each run.
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
    /// Whether a run checks after its backup (no schedule of its own).
    pub fn after_each_run(&self) -> bool {
        self.enabled && self.schedule.is_none()
    }

    /// The check this policy asks for.
    pub fn request(&self) -> crate::ops::check::CheckRequest {
        crate::ops::check::CheckRequest {
            read_data: self.read_data,
            read_data_subset: self.read_data_subset,
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

/// `check = { … }`.
pub(super) fn check(p: &mut Problems, f: Option<&Spanned<CheckFile>>) -> CheckPolicy {
    let Some(f) = f else {
        return CheckPolicy::default();
    };
    let c = f.get_ref();
    let enabled = c.enabled.unwrap_or(true);
    let read_data_subset = c.read_data_subset.as_ref().and_then(|s| {
        DataSubset::parse(s.get_ref())
            .map_err(|e| p.at(s.span(), e))
            .ok()
    });
    if c.read_data && c.read_data_subset.is_some() {
        p.at(
            f.span(),
            "check: give read-data (every pack) or read-data-subset (some), not both",
        );
    }
    if !enabled && c.schedule.is_some() {
        p.at(
            f.span(),
            "check: enabled = false and a schedule: remove one",
        );
    }
    CheckPolicy {
        enabled,
        read_data: c.read_data,
        read_data_subset,
        schedule: c.schedule.as_ref().and_then(|s| schedule(p, s)),
    }
}

/// `prune = { … }`.
pub(super) fn prune(p: &mut Problems, f: Option<&Spanned<PruneFile>>) -> Option<PrunePolicy> {
    let f = f?;
    let c = f.get_ref();
    let max_unused = match &c.max_unused {
        None => crate::ops::prune::PruneRequest::default().max_unused,
        Some(m) => match crate::ops::prune::PruneRequest::parse_max_unused(m.get_ref()) {
            Ok(v) => v,
            Err(e) => {
                p.at(
                    m.span(),
                    e.to_string().replace("--max-unused", "max-unused"),
                );
                return None;
            }
        },
    };
    Some(PrunePolicy {
        schedule: schedule(p, &c.schedule)?,
        max_unused,
    })
}
