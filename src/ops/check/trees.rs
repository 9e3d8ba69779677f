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
use crate::tree::walk::{self, Fold, Opened};
use crate::tree::{self, Tree};

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
    /// Problems below `id`, with paths relative to it (shared subtrees are read once).
    fn tree(&mut self, id: &TreeId) -> Result<Arc<Vec<Hurt>>> {
        walk::fold(self, id)
    }
}

impl Fold for Walker<'_> {
    type Out = Arc<Vec<Hurt>>;

    fn done(&mut self) -> &mut HashMap<TreeId, Self::Out> {
        &mut self.memo
    }

    /// Reads a tree through the segments check trusts (not the cache); a tree that is
    /// missing, in a damaged pack or undecodable is one problem at its own path.
    fn open(&mut self, id: &TreeId) -> Result<Opened<Self::Out>> {
        let bid = BlobId::from(*id);
        let whole = |pack, why: String, kind| {
            Ok(Opened::Known(Arc::new(vec![Hurt {
                path: String::new(),
                pack,
                why,
                tree: Some((*id, kind)),
            }])))
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
        match decoded {
            Ok(t) => Ok(Opened::Tree(t)),
            Err(e) => whole(Some(loc.pack), e.to_string(), FindingKind::TreeDamaged),
        }
    }

    fn combine(&mut self, _: &TreeId, t: Tree) -> Result<Self::Out> {
        self.trees += 1;
        let mut out = Vec::new();
        for node in &t.nodes {
            let name = node.display_name();
            if let Some((pack, why)) = self.first_bad_chunk(node) {
                out.push(Hurt {
                    path: format!("/{name}"),
                    pack,
                    why,
                    tree: None,
                });
            }
            if let Some(below) = node.subtree.and_then(|sub| self.memo.get(&sub)) {
                out.extend(below.iter().map(|h| Hurt {
                    path: format!("/{name}{}", h.path),
                    pack: h.pack,
                    why: h.why.clone(),
                    tree: h.tree,
                }));
            }
        }
        Ok(Arc::new(out))
    }
}

impl Walker<'_> {
    /// The first content chunk of `node` that is damaged or not indexed: where and why.
    fn first_bad_chunk(&self, node: &tree::Node) -> Option<(Option<PackId>, String)> {
        node.content.iter().find_map(|c| {
            let cb = BlobId::from(*c);
            if let Some((pack, why)) = self.damaged.get(&cb) {
                Some((
                    Some(*pack),
                    format!("chunk {} is damaged: {why}", c.short()),
                ))
            } else if !self.index.blobs.contains_key(&(BlobKind::Data, cb)) {
                Some((None, format!("chunk {} is not in the index", c.short())))
            } else {
                None
            }
        })
    }
}

/// Walks every snapshot and records which of them (and which of their files) are damaged.
pub(super) fn check_snapshots(
    repo: &Repository,
    ids: &[crate::id::SnapshotId],
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
    for id in ids {
        let loaded = match repo.load_snapshot(id) {
            // Forgotten since it was listed (forget runs beside a check).
            Err(crate::error::Error::Missing(_)) => continue,
            loaded => loaded,
        };
        report.snapshots += 1;
        let snap = match loaded {
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
        let hurt = w.tree(&snap.tree)?;
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
