//! Check, part 2: every tree reachable from every snapshot decodes, every chunk it names is
//! indexed, and damage found in packs is traced to the snapshots and files it hurts.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::packs::Damaged;
use super::{CheckReport, FindingKind, SegmentIndex, Severity};
use crate::blob::BlobKind;
use crate::error::Result;
use crate::id::{BlobId, PackId, TreeId};
use crate::repository::Repository;
use crate::tree;

/// Paths shown per finding; the count says how many more there are.
const MAX_PATHS: usize = 10;

/// A path below some tree that cannot be restored, and why.
#[derive(Clone)]
struct Hurt {
    path: String,
    pack: Option<PackId>,
    why: String,
    /// When a tree itself is the problem: which, and whether it is missing or damaged.
    tree: Option<(TreeId, FindingKind)>,
}

struct Walker<'a> {
    repo: &'a Repository,
    index: &'a SegmentIndex,
    damaged: &'a Damaged,
    memo: HashMap<TreeId, Arc<Vec<Hurt>>>,
    trees: usize,
}

impl Walker<'_> {
    /// Problems below `id`, with paths relative to it (memoised: shared subtrees are read once).
    fn tree(&mut self, id: &TreeId) -> Arc<Vec<Hurt>> {
        if let Some(m) = self.memo.get(id) {
            return m.clone();
        }
        let hurt = Arc::new(self.tree_uncached(id));
        self.memo.insert(*id, hurt.clone());
        hurt
    }

    fn tree_uncached(&mut self, id: &TreeId) -> Vec<Hurt> {
        let bid = BlobId::from(*id);
        let whole = |pack, why: String, kind| {
            vec![Hurt {
                path: String::new(),
                pack,
                why,
                tree: Some((*id, kind)),
            }]
        };
        let Some(loc) = self.index.blobs.get(&(BlobKind::Tree, bid)) else {
            return whole(
                None,
                format!("tree {} is not in the index", id.short()),
                FindingKind::TreeMissing,
            );
        };
        if let Some((pack, why)) = self.damaged.get(&bid) {
            return whole(
                Some(*pack),
                format!("tree {} is damaged: {why}", id.short()),
                FindingKind::TreeDamaged,
            );
        }
        let decoded = self
            .repo
            .read_blob_at(BlobKind::Tree, &bid, loc)
            .and_then(|b| tree::decode(&b, &format!("tree {}", id.short())));
        let t = match decoded {
            Ok(t) => t,
            Err(e) => return whole(Some(loc.pack), e.to_string(), FindingKind::TreeDamaged),
        };
        self.trees += 1;
        let mut out = Vec::new();
        for node in &t.nodes {
            let name = node.display_name();
            for c in &node.content {
                let cb = BlobId::from(*c);
                let problem = if let Some((pack, why)) = self.damaged.get(&cb) {
                    Some((
                        Some(*pack),
                        format!("chunk {} is damaged: {why}", c.short()),
                    ))
                } else if !self.index.blobs.contains_key(&(BlobKind::Data, cb)) {
                    Some((None, format!("chunk {} is not in the index", c.short())))
                } else {
                    None
                };
                if let Some((pack, why)) = problem {
                    out.push(Hurt {
                        path: format!("/{name}"),
                        pack,
                        why,
                        tree: None,
                    });
                    break;
                }
            }
            if let Some(sub) = &node.subtree {
                for h in self.tree(sub).iter() {
                    out.push(Hurt {
                        path: format!("/{name}{}", h.path),
                        pack: h.pack,
                        why: h.why.clone(),
                        tree: h.tree,
                    });
                }
            }
        }
        out
    }
}

/// Walks every snapshot and records which of them (and which of their files) are damaged.
pub(super) fn check_snapshots(
    repo: &Repository,
    index: &SegmentIndex,
    damaged: &Damaged,
    report: &mut CheckReport,
) -> Result<()> {
    let mut w = Walker {
        repo,
        index,
        damaged,
        memo: HashMap::new(),
        trees: 0,
    };
    let mut per_pack: HashMap<PackId, BTreeSet<String>> = HashMap::new();
    let mut broken = BrokenTrees::default();
    for id in repo.snapshot_ids()? {
        report.snapshots += 1;
        let snap = match repo.load_snapshot(&id) {
            Ok(s) => s,
            Err(e) => {
                report.push(
                    Severity::Error,
                    FindingKind::SnapshotUnreadable,
                    format!("snapshot {}: {e}", id.short()),
                    None,
                );
                if let Some(f) = report.findings.last_mut() {
                    f.fix = format!("repo forget {}", id.short());
                }
                continue;
            }
        };
        let hurt = w.tree(&snap.tree);
        if hurt.is_empty() {
            continue;
        }
        let short = id.short();
        let mut paths = Vec::new();
        for h in hurt.iter() {
            if let Some(p) = h.pack {
                per_pack.entry(p).or_default().insert(short.clone());
            }
            broken.note(h, &short);
            if paths.len() < MAX_PATHS {
                let path = if h.path.is_empty() {
                    "/".to_string()
                } else {
                    h.path.clone()
                };
                paths.push(format!("{short}:{path} ({})", h.why));
            }
        }
        report.findings.push(super::Finding {
            severity: Severity::Error,
            kind: FindingKind::SnapshotDamaged,
            fix: FindingKind::SnapshotDamaged.fix().to_string(),
            message: format!(
                "snapshot {short} ({}) cannot be fully restored: {} path(s) damaged",
                snap.time.format("%Y-%m-%d %H:%M:%S"),
                hurt.len()
            ),
            pack: None,
            snapshots: vec![short],
            paths,
        });
    }
    broken.report(report);
    for f in &mut report.findings {
        if let Some(p) = f.pack {
            if let Some(snaps) = per_pack.get(&p) {
                f.snapshots = snaps.iter().cloned().collect();
            }
        }
    }
    report.trees = w.trees;
    Ok(())
}

/// Trees that are themselves missing or damaged, with the snapshots and paths that lead
/// to them: a finding each, unless a pack finding already names the cause.
#[derive(Default)]
struct BrokenTrees(HashMap<TreeId, Broken>);

/// One broken tree: what is wrong, where, and what it hurts.
struct Broken {
    kind: FindingKind,
    pack: Option<PackId>,
    why: String,
    snapshots: BTreeSet<String>,
    paths: Vec<String>,
}

impl BrokenTrees {
    fn note(&mut self, h: &Hurt, snapshot: &str) {
        let Some((id, kind)) = h.tree else {
            return;
        };
        let e = self.0.entry(id).or_insert_with(|| Broken {
            kind,
            pack: h.pack,
            why: h.why.clone(),
            snapshots: BTreeSet::new(),
            paths: Vec::new(),
        });
        e.snapshots.insert(snapshot.to_string());
        if e.paths.len() < MAX_PATHS {
            let path = if h.path.is_empty() { "/" } else { &h.path };
            e.paths.push(format!("{snapshot}:{path}"));
        }
    }

    fn report(self, report: &mut CheckReport) {
        let explained: BTreeSet<PackId> = report.findings.iter().filter_map(|f| f.pack).collect();
        let mut trees: Vec<_> = self.0.into_iter().collect();
        trees.sort_by_key(|(id, _)| *id);
        for (id, b) in trees {
            if b.pack.is_some_and(|p| explained.contains(&p)) {
                continue;
            }
            report.findings.push(super::Finding {
                severity: Severity::Error,
                kind: b.kind,
                fix: b.kind.fix().to_string(),
                message: format!("tree {}: {}", id.short(), b.why),
                pack: b.pack,
                snapshots: b.snapshots.into_iter().collect(),
                paths: b.paths,
            });
        }
    }
}
