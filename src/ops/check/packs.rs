//! Check, part 1: index segments and packs (existence, size, trailer, and with
//! `--read-data` every blob's authentication and hash).

use std::collections::HashMap;

use rayon::prelude::*;

use super::{CheckReport, FindingKind, SegmentIndex, Severity};
use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};
use crate::index::{list_segments, read_segment, BlobLocation};
use crate::pack::pack_path;
use crate::pack::reader::{parse_pack, read_trailer};
use crate::pack::PackEntry;
use crate::progress::Progress;
use crate::repository::Repository;

/// Blob → (pack, why it is unreadable).
pub(super) type Damaged = HashMap<BlobId, (PackId, String)>;

/// Reads every index segment; unreadable ones become findings. When some are, the packs
/// no readable segment lists (and no prune marked) are found by their trailers, as the
/// local index does: the damage is the segment's, and nothing is reported lost for it.
pub(super) fn load_segments(repo: &Repository, report: &mut CheckReport) -> Result<SegmentIndex> {
    let mut idx = SegmentIndex {
        blobs: HashMap::new(),
        packs: HashMap::new(),
        segments: Default::default(),
    };
    let mut damaged = Vec::new();
    for seg in list_segments(repo.backend())? {
        idx.segments.insert(seg);
        match read_segment(repo.backend(), repo.key(), &seg) {
            Ok(packs) => add_packs(&mut idx, packs),
            Err(e) => damaged.push((seg, e)),
        }
    }
    if damaged.is_empty() {
        return Ok(idx);
    }
    let marks = crate::index::pending::load(repo.backend(), repo.key())?;
    let mut found = Vec::new();
    for (id, size) in crate::backend::pack_sizes(repo.backend())? {
        if idx.packs.contains_key(&id) || marks.packs.contains_key(&id) {
            continue;
        }
        if let Ok(entries) = read_trailer(repo.backend(), repo.key(), &id, size) {
            found.push(crate::index::segment::PackRecord { id, size, entries });
        }
    }
    let n = found.len();
    add_packs(&mut idx, found);
    for (seg, e) in damaged {
        report.push(
            Severity::Error,
            FindingKind::SegmentUnreadable,
            format!(
                "index segment {} is unreadable: {e}; {n} pack(s) no readable segment lists were found by their trailers",
                seg.short()
            ),
            None,
        );
    }
    Ok(idx)
}

/// Packs listed by segments that appeared after [`load_segments`] read them: a run that
/// ended while this check ran (its packs are the next check's).
fn indexed_since(
    repo: &Repository,
    index: &SegmentIndex,
) -> Result<std::collections::HashSet<PackId>> {
    let mut out = std::collections::HashSet::new();
    for seg in list_segments(repo.backend())? {
        if index.segments.contains(&seg) {
            continue;
        }
        if let Ok(packs) = read_segment(repo.backend(), repo.key(), &seg) {
            out.extend(packs.into_iter().map(|p| p.id));
        }
    }
    Ok(out)
}

fn add_packs(idx: &mut SegmentIndex, packs: Vec<crate::index::segment::PackRecord>) {
    for p in packs {
        idx.packs.insert(p.id, p.size);
        for e in p.entries {
            idx.blobs
                .insert((e.kind, e.id), BlobLocation::new(p.id, &e));
        }
    }
}

/// Checks every pack the segments list (and notes packs they don't). Returns damaged blobs.
pub(super) fn check_packs(
    repo: &Repository,
    index: &SegmentIndex,
    read_data: &super::DataRead,
    own_lock: &crate::lock::LockWatch,
    progress: &Progress,
    ctx: &crate::ops::context::Ctx,
    report: &mut CheckReport,
) -> Result<Damaged> {
    // Runs holding locks beside this one (backups, copies) may have packs written and not
    // yet listed by a segment: looked at before the packs are listed.
    let now = chrono::Utc::now();
    let own = own_lock.id();
    let others = crate::lock::list(repo.backend(), repo.key())?
        .iter()
        .filter(|l| l.id != own && !l.is_stale(now))
        .count();
    let present = crate::backend::pack_sizes(repo.backend())?;
    let mut by_pack: HashMap<PackId, Vec<(BlobKind, BlobId, BlobLocation)>> = HashMap::new();
    for ((kind, id), loc) in &index.blobs {
        by_pack
            .entry(loc.pack)
            .or_default()
            .push((*kind, *id, *loc));
    }
    // In pack order: the blobs of a unit follow each other, so it is opened once.
    for blobs in by_pack.values_mut() {
        blobs.sort_by_key(|(_, _, l)| (l.offset, l.unit_offset));
    }
    // Packs a prune marked for deletion are expected to be unlisted until it deletes them.
    let marks = crate::index::pending::load(repo.backend(), repo.key())?;
    for d in &marks.damaged {
        report.push(
            Severity::Error,
            FindingKind::PendingUnreadable,
            d.clone(),
            None,
        );
    }
    let unindexed = |p: &PackId| !index.packs.contains_key(p) && !marks.packs.contains_key(p);
    let since = if present.keys().any(unindexed) {
        indexed_since(repo, index)?
    } else {
        Default::default()
    };
    for (p, size) in &present {
        if unindexed(p) {
            if others > 0 || since.contains(p) {
                report.packs_in_flight += 1;
                continue;
            }
            report.push(
                Severity::Warning,
                FindingKind::PackUnindexed,
                format!(
                    "pack {} ({size} bytes) is not in the index: left by an interrupted run",
                    p.short()
                ),
                Some(*p),
            );
        }
    }
    report.packs = index.packs.len();
    progress.set_unit("packs");
    progress.set_totals(index.packs.len() as u64, index.packs.values().sum());

    let mut packs: Vec<(PackId, u64)> = index.packs.iter().map(|(p, s)| (*p, *s)).collect();
    packs.sort();
    let subset = match read_data {
        super::DataRead::Subset(s) => Some(s.select(&packs)),
        _ => None,
    };
    let reads = |id: &PackId| match read_data {
        super::DataRead::Nothing => false,
        super::DataRead::All => true,
        super::DataRead::Subset(_) => subset.as_ref().is_some_and(|s| s.contains(id)),
    };
    let results: Vec<PackResult> = crate::backend::with_read_threads(repo.backend(), || {
        packs
            .par_iter()
            .filter(|_| !ctx.cancelled())
            .map(|(id, size)| {
                let blobs = by_pack.get(id).map(Vec::as_slice).unwrap_or(&[]);
                let read_data = reads(id);
                let mut r = check_one(repo, id, *size, present.get(id).copied(), blobs, read_data);
                progress.done(1, *size);
                r.read = if read_data { *size } else { 0 };
                r.read_data = read_data;
                if let Some((_, why)) = &r.whole {
                    r.bad = blobs.iter().map(|b| (b.1, why.clone())).collect();
                }
                r
            })
            .collect()
    });
    ctx.check()?;
    let mut damaged = Damaged::new();
    for r in results {
        report.bytes_read += r.read;
        report.packs_read += usize::from(r.read_data && r.whole.is_none());
        let read_data = r.read_data;
        let pack = r.pack;
        if let Some(t) = &r.trailer {
            // The blobs are reached through the index, not the trailer: only a rebuild
            // of the index from trailers would miss this pack.
            let blobs = if r.bad.is_empty() && read_data {
                "every blob in it verified; every snapshot still restores"
            } else if read_data {
                "some blobs in it are damaged too (listed separately)"
            } else {
                "its blobs were not read (check --read-data verifies them)"
            };
            report.push(
                Severity::Error,
                FindingKind::PackTrailer,
                format!("pack {}: trailer damaged ({t}); {blobs}", pack.short()),
                Some(pack),
            );
        }
        if let Some((kind, why)) = &r.whole {
            report.push(
                Severity::Error,
                *kind,
                format!("pack {}: {why}", pack.short()),
                Some(pack),
            );
        } else {
            for (blob, why) in &r.bad {
                report.push(
                    Severity::Error,
                    FindingKind::BlobDamaged,
                    format!("pack {}: blob {}: {why}", pack.short(), blob.short()),
                    Some(pack),
                );
            }
        }
        for (blob, why) in r.bad {
            damaged.insert(blob, (pack, why));
        }
    }
    Ok(damaged)
}

/// What checking one pack found.
struct PackResult {
    pack: PackId,
    /// Blobs that failed, with the reason.
    bad: Vec<(BlobId, String)>,
    /// Set when the whole pack is unusable (missing, wrong size, altered).
    whole: Option<(FindingKind, String)>,
    /// Set when the trailer cannot be read or disagrees with the index.
    trailer: Option<String>,
    /// Bytes read from the backend.
    read: u64,
    /// Whether its blobs were read.
    read_data: bool,
}

/// Checks one pack: its presence and size, its trailer, and with `read_data` every blob
/// (through the index's locations, so a damaged trailer alone loses nothing).
fn check_one(
    repo: &Repository,
    id: &PackId,
    size: u64,
    actual: Option<u64>,
    blobs: &[(BlobKind, BlobId, BlobLocation)],
    read_data: bool,
) -> PackResult {
    let mut r = PackResult {
        pack: *id,
        bad: Vec::new(),
        whole: None,
        trailer: None,
        read: 0,
        read_data,
    };
    let Some(actual) = actual else {
        r.whole = Some((
            FindingKind::PackMissing,
            "missing from the repository".into(),
        ));
        return r;
    };
    if actual != size {
        r.whole = Some((
            FindingKind::PackSize,
            format!("size is {actual} bytes but the index says {size} (truncated or altered)"),
        ));
        return r;
    }
    if !read_data {
        match read_trailer(repo.backend(), repo.key(), id, size) {
            Ok(t) => r.trailer = trailer_disagrees(&t, blobs),
            Err(e) => r.trailer = Some(short_reason(&e)),
        }
        return r;
    }
    let bytes = match repo.backend().get(&pack_path(id)) {
        Ok(b) => b,
        Err(e) => {
            r.whole = Some((FindingKind::PackMissing, e.to_string()));
            return r;
        }
    };
    let what = format!("pack {}", id.short());
    match parse_pack(repo.key(), &bytes, &what) {
        Ok(t) => r.trailer = trailer_disagrees(&t, blobs),
        Err(e) => r.trailer = Some(short_reason(&e)),
    }
    for (kind, bid, loc) in blobs {
        let start = loc.offset as usize;
        let Some(sealed) = bytes.get(start..start + loc.length as usize) else {
            r.bad
                .push((*bid, "extends past the end of the pack".into()));
            continue;
        };
        if let Err(e) = repo.open_blob(*kind, bid, sealed, loc) {
            r.bad.push((*bid, short_reason(&e)));
        }
    }
    let hash_ok = crate::hash::content_hash(&bytes) == id.0;
    if !hash_ok && r.bad.is_empty() && r.trailer.is_none() {
        r.whole = Some((
            FindingKind::PackContent,
            "content does not match its name (bytes outside any blob were altered)".into(),
        ));
    }
    r
}

fn short_reason(e: &Error) -> String {
    match e {
        Error::Corrupt { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// Whether the pack's own trailer places the blobs differently from the index.
fn trailer_disagrees(
    trailer: &[PackEntry],
    blobs: &[(BlobKind, BlobId, BlobLocation)],
) -> Option<String> {
    let t: HashMap<(BlobKind, BlobId), &PackEntry> =
        trailer.iter().map(|e| ((e.kind, e.id), e)).collect();
    let wrong = blobs
        .iter()
        .filter(|(kind, id, loc)| {
            !t.get(&(*kind, *id))
                .is_some_and(|e| BlobLocation::new(loc.pack, e) == *loc)
        })
        .count();
    (wrong > 0).then(|| format!("it places {wrong} blob(s) differently from the index"))
}
