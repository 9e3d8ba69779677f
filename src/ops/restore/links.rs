//! Hard links on restore: which member of a group the others become links of, and
//! files the target shares between entries the snapshot keeps apart.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;

use super::conflict::{self, Action};
use super::plan::{Plan, PlanItem};
use super::target::TargetDir;
use crate::repository::Repository;

/// The hard-link group of a file: the path of its first member, `None` for a file of its
/// own.
fn group(item: &PlanItem) -> Option<PathBuf> {
    match (&item.link_to, item.node.links > 1) {
        (Some(first), _) => Some(first.clone()),
        (None, true) => Some(item.rel.clone()),
        (None, false) => None,
    }
}

/// Files already up to date that the target holds as one inode (hard links) while the
/// snapshot has them as separate files or in separate groups: every member after the
/// first group's is written again (a new file renamed over it), so that changing one no
/// longer changes the others, as in the snapshot.
pub(super) fn unshare(plan: &Plan, target: Option<&TargetDir>, actions: &mut [Option<Action>]) {
    let Some(t) = target else {
        return;
    };
    let mut owner: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (idx, item) in plan.items.iter().enumerate() {
        if actions[idx] != Some(Action::UpToDate) {
            continue;
        }
        let Some(st) = t.lstat(&item.rel).filter(|st| st.nlink > 1) else {
            continue;
        };
        let mine = group(item).unwrap_or_else(|| item.rel.clone());
        match owner.entry((st.dev, st.ino)) {
            Entry::Vacant(v) => {
                v.insert(mine);
            }
            Entry::Occupied(o) if *o.get() == mine => {}
            Entry::Occupied(_) => actions[idx] = Some(Action::Overwrite),
        }
    }
}

/// The member of a hard-link group later members are linked to.
pub(super) struct LinkSource {
    /// Its plan index.
    pub(super) item: usize,
    /// Where its content is (target-relative).
    pub(super) rel: PathBuf,
    /// Already there and identical (checked), rather than written by this restore.
    pub(super) verified: bool,
}

/// For each later member of a hard-link group, the member it becomes a link of: the first
/// one whose content this restore writes, or whose existing content it verified. A member
/// kept as it is (`skip`, an `if-newer` loss) is never linked to: that would give its
/// foreign content to the others; the next member is written instead.
pub(super) fn link_sources(
    repo: &Repository,
    target: Option<&TargetDir>,
    plan: &Plan,
    actions: &[Option<Action>],
) -> Vec<Option<LinkSource>> {
    let mut heads: HashMap<PathBuf, (usize, PathBuf, bool)> = HashMap::new();
    let mut out = Vec::with_capacity(plan.items.len());
    for (idx, item) in plan.items.iter().enumerate() {
        let Some(group) = group(item) else {
            out.push(None);
            continue;
        };
        if let Some((src, rel, verified)) = heads.get(&group) {
            out.push(Some(LinkSource {
                item: *src,
                rel: rel.clone(),
                verified: *verified,
            }));
            continue;
        }
        // No source yet: this member becomes one if its content will be right.
        let source = match &actions[idx] {
            Some(Action::Create | Action::Overwrite) => Some((item.rel.clone(), false)),
            Some(Action::Rename(p)) => Some((p.clone(), false)),
            Some(Action::UpToDate) => target
                .filter(|t| conflict::same_content(repo, t, &item.rel, &item.node))
                .map(|_| (item.rel.clone(), true)),
            _ => None,
        };
        if let Some((rel, verified)) = source {
            heads.insert(group, (idx, rel, verified));
        }
        out.push(None);
    }
    out
}
