//! Repair, part 1: make the index segments describe the packs that are really there.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::{RepairReport, RepairRequest};
use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId, SegmentId};
use crate::index::pending::{self, PendingPack, Reason};
use crate::index::segment::{self, PackRecord};
use crate::index::{list_segments, read_segment, BlobLocation};
use crate::ops::prune::segments::{self as prune_segments, SegmentPlan};
use crate::pack::reader::read_trailer;
use crate::pack::{pack_path, PackEntry};
use crate::repository::Repository;

/// What checking one listed pack found.
enum Verdict {
    Good,
    Missing,
    /// Unusable as it is; `intact` are the entries whose blobs still verify.
    Damaged {
        why: String,
        intact: Vec<PackEntry>,
    },
}

/// The repository's segments as read.
struct Segments {
    /// Every pack a readable segment lists (first listing wins).
    listed: HashMap<PackId, PackRecord>,
    /// Which packs each readable segment lists.
    by_segment: Vec<(SegmentId, Vec<PackId>)>,
    /// Segments that cannot be read.
    damaged: Vec<SegmentId>,
}

fn read_segments(repo: &Repository, report: &mut RepairReport) -> Result<Segments> {
    let mut s = Segments {
        listed: HashMap::new(),
        by_segment: Vec::new(),
        damaged: Vec::new(),
    };
    for seg in list_segments(repo.backend())? {
        match read_segment(repo.backend(), repo.key(), &seg) {
            Ok(packs) => {
                s.by_segment
                    .push((seg, packs.iter().map(|p| p.id).collect()));
                for p in packs {
                    s.listed.entry(p.id).or_insert(p);
                }
            }
            Err(e @ Error::Corrupt { .. }) => {
                report.segments_damaged.push(e.to_string());
                s.damaged.push(seg);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(s)
}

/// Blobs no pack holds any more.
pub(super) type Lost = HashSet<(BlobKind, BlobId)>;

/// Repairs the segments (see the module documentation of [`super`]); returns the blobs
/// that are lost.
pub(super) fn repair(
    repo: &Repository,
    opts: &RepairRequest,
    report: &mut RepairReport,
) -> Result<Lost> {
    let segs = read_segments(repo, report)?;
    let on_disk = crate::backend::pack_sizes(repo.backend())?;
    let marks = pending::load(repo.backend(), repo.key())?;
    report
        .segments_damaged
        .extend(marks.damaged.iter().cloned());

    // Listed packs: present, the right size, a trailer that agrees, (blobs that verify).
    let listed: Vec<&PackRecord> = segs.listed.values().collect();
    let verdicts: Vec<(PackId, Verdict)> =
        crate::backend::with_read_threads(repo.backend(), || {
            listed
                .par_iter()
                .map(|p| {
                    (
                        p.id,
                        judge(repo, p, on_disk.get(&p.id).copied(), opts.read_data),
                    )
                })
                .collect()
        });
    let mut missing = HashSet::new();
    let mut damaged: HashMap<PackId, Vec<PackEntry>> = HashMap::new();
    for (id, v) in verdicts {
        match v {
            Verdict::Good => {}
            Verdict::Missing => {
                report.packs_missing.push(id.short());
                missing.insert(id);
            }
            Verdict::Damaged { why, intact } => {
                report
                    .packs_damaged
                    .push(format!("pack {}: {why}", id.short()));
                damaged.insert(id, intact);
            }
        }
    }
    report.packs_missing.sort();
    report.packs_damaged.sort();

    // Packs no readable segment lists (a damaged segment's, or an interrupted writer's):
    // listed again from their trailers, unless a prune marked them.
    let mut adopted = Vec::new();
    for (id, size) in &on_disk {
        if segs.listed.contains_key(id) || marks.packs.contains_key(id) {
            continue;
        }
        match read_trailer(repo.backend(), repo.key(), id, *size) {
            Ok(entries) => adopted.push(PackRecord {
                id: *id,
                size: *size,
                entries,
            }),
            Err(e @ Error::Corrupt { .. }) => report.packs_damaged.push(format!(
                "pack {} (listed by no segment): {e}; left alone",
                id.short()
            )),
            Err(Error::Missing(_)) => {}
            Err(e) => return Err(e),
        }
    }
    report.packs_adopted = adopted.len() as u64;

    // Blobs still held by a good or adopted pack need no salvage.
    let mut held: HashSet<(BlobKind, BlobId)> = HashSet::new();
    for p in segs
        .listed
        .values()
        .filter(|p| !missing.contains(&p.id) && !damaged.contains_key(&p.id))
    {
        held.extend(p.entries.iter().map(|e| (e.kind, e.id)));
    }
    for p in &adopted {
        held.extend(p.entries.iter().map(|e| (e.kind, e.id)));
    }
    let mut lost: Lost = HashSet::new();
    for id in missing.iter().chain(damaged.keys()) {
        let intact: HashSet<BlobId> = damaged
            .get(id)
            .map_or_else(HashSet::new, |v| v.iter().map(|e| e.id).collect());
        for e in &segs.listed[id].entries {
            if !held.contains(&(e.kind, e.id)) && !intact.contains(&e.id) {
                lost.insert((e.kind, e.id));
            }
        }
    }
    report.blobs_lost = lost.len() as u64;
    if opts.dry_run {
        report.blobs_salvaged = damaged
            .values()
            .flatten()
            .filter(|e| !held.contains(&(e.kind, e.id)))
            .count() as u64;
        return Ok(lost);
    }

    // Writes: salvaged blobs, the adoption segment, segments without the bad packs, the
    // marks of damaged packs; only then are the replaced segments removed.
    report.blobs_salvaged = salvage(repo, &damaged, &mut held, report)?;
    if !adopted.is_empty() {
        let (seg, bytes) = segment::seal(repo.key(), repo.config().structure_version(), &adopted)?;
        repo.backend().put(&segment::segment_path(&seg), &bytes)?;
        report.segments_written += 1;
    }
    let bad: HashSet<PackId> = missing.iter().chain(damaged.keys()).copied().collect();
    let plan = SegmentPlan {
        before: (segs.by_segment.len() + segs.damaged.len()) as u64,
        to_rewrite: segs
            .by_segment
            .iter()
            .filter(|(_, packs)| packs.iter().any(|p| bad.contains(p)))
            .map(|(s, _)| *s)
            .collect(),
        damaged: segs.damaged.len(),
    };
    report.segments_written += prune_segments::rewrite(repo, &plan, &bad)?;
    let now = chrono::Utc::now();
    let marked: Vec<PendingPack> = damaged
        .keys()
        .filter_map(|id| {
            Some(PendingPack {
                id: *id,
                size: *on_disk.get(id)?,
                marked: now,
                reason: Reason::Damaged,
            })
        })
        .collect();
    if !marked.is_empty() {
        pending::replace(repo.backend(), repo.key(), &marked, &[])?;
    }
    repo.check_alone()?;
    for seg in plan.to_rewrite.iter().chain(&segs.damaged) {
        repo.backend().delete(&segment::segment_path(seg))?;
        report.segments_removed += 1;
    }
    // Unreadable marks: their packs were treated as unlisted above (listed again, or
    // left for prune to mark anew).
    for o in &marks.damaged_objects {
        repo.backend().delete(o)?;
    }
    Ok(lost)
}

/// Judges one listed pack.
fn judge(repo: &Repository, p: &PackRecord, actual: Option<u64>, read_data: bool) -> Verdict {
    let Some(actual) = actual else {
        return Verdict::Missing;
    };
    let why = if actual != p.size {
        Some(format!(
            "size is {actual} bytes but the index says {} (truncated or altered)",
            p.size
        ))
    } else {
        match read_trailer(repo.backend(), repo.key(), &p.id, p.size) {
            Err(e) => Some(format!("trailer unreadable ({e})")),
            Ok(t) if !same_entries(&t, &p.entries) => {
                Some("the trailer and the index disagree".to_string())
            }
            Ok(_) if !read_data => None,
            Ok(_) => {
                let intact = verify_entries(repo, p);
                if intact.len() == p.entries.len() {
                    None
                } else {
                    Some(format!(
                        "{} of {} blobs are damaged",
                        p.entries.len() - intact.len(),
                        p.entries.len()
                    ))
                }
            }
        }
    };
    match why {
        None => Verdict::Good,
        Some(why) => Verdict::Damaged {
            why,
            intact: verify_entries(repo, p),
        },
    }
}

fn same_entries(trailer: &[PackEntry], listed: &[PackEntry]) -> bool {
    let mut a: Vec<&PackEntry> = trailer.iter().collect();
    let mut b: Vec<&PackEntry> = listed.iter().collect();
    a.sort_by_key(|e| (e.offset, e.unit_offset));
    b.sort_by_key(|e| (e.offset, e.unit_offset));
    a == b
}

/// The entries of `p` (as the index places them) whose blobs decrypt and hash to their id.
fn verify_entries(repo: &Repository, p: &PackRecord) -> Vec<PackEntry> {
    let Ok(bytes) = repo.backend().get(&pack_path(&p.id)) else {
        return Vec::new();
    };
    p.entries
        .iter()
        .filter(|e| {
            let start = e.offset as usize;
            let Some(sealed) = bytes.get(start..start + e.length as usize) else {
                return false;
            };
            let loc = location(p.id, e);
            repo.open_blob(e.kind, &e.id, sealed, &loc).is_ok()
        })
        .cloned()
        .collect()
}

fn location(pack: PackId, e: &PackEntry) -> BlobLocation {
    BlobLocation::new(pack, e)
}

/// Copies the intact blobs of damaged packs that no other pack holds into new packs.
fn salvage(
    repo: &Repository,
    damaged: &HashMap<PackId, Vec<PackEntry>>,
    held: &mut HashSet<(BlobKind, BlobId)>,
    report: &mut RepairReport,
) -> Result<u64> {
    let mut writer = crate::writer::BlobWriter::new(repo);
    let mut n = 0;
    for (id, intact) in damaged {
        let wanted: Vec<&PackEntry> = intact
            .iter()
            .filter(|e| !held.contains(&(e.kind, e.id)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let bytes = repo.backend().get(&pack_path(id))?;
        for e in wanted {
            let start = e.offset as usize;
            let Some(sealed) = bytes.get(start..start + e.length as usize) else {
                continue;
            };
            // Verified again: never carry damage forward.
            let loc = location(*id, e);
            let Ok(data) = repo.open_blob(e.kind, &e.id, sealed, &loc) else {
                continue;
            };
            writer.carry(e.kind, e.id, sealed, &loc, &data)?;
            held.insert((e.kind, e.id));
            n += 1;
        }
    }
    let stats = writer.finish()?;
    report.segments_written += stats.segments;
    Ok(n)
}
