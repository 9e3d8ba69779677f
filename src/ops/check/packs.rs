//! Check, part 1: index segments and packs (existence, size, trailer, and with
//! `--read-data` every blob's authentication and hash).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;

use rayon::prelude::*;

use super::{CheckReport, SegmentIndex, Severity};
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

/// Reads every index segment; unreadable ones become findings.
pub(super) fn load_segments(repo: &Repository, report: &mut CheckReport) -> Result<SegmentIndex> {
    let mut idx = SegmentIndex {
        blobs: HashMap::new(),
        packs: HashMap::new(),
    };
    for seg in list_segments(repo.backend())? {
        match read_segment(repo.backend(), repo.key(), &seg) {
            Ok(packs) => {
                for p in packs {
                    idx.packs.insert(p.id, p.size);
                    for e in p.entries {
                        idx.blobs.insert(
                            (e.kind, e.id),
                            BlobLocation {
                                pack: p.id,
                                offset: e.offset,
                                length: e.length,
                                raw_length: e.raw_length,
                            },
                        );
                    }
                }
            }
            Err(e) => report.push(
                Severity::Error,
                format!(
                    "index segment {} is unreadable: {e} (run `repo index rebuild`)",
                    seg.short()
                ),
                None,
            ),
        }
    }
    Ok(idx)
}

/// Checks every pack the segments list (and notes packs they don't). Returns damaged blobs.
pub(super) fn check_packs(
    repo: &Repository,
    index: &SegmentIndex,
    read_data: bool,
    progress: &Progress,
    report: &mut CheckReport,
) -> Result<Damaged> {
    let present: HashMap<PackId, u64> = repo
        .backend()
        .list("packs/")?
        .into_iter()
        .filter_map(|o| Some((o.path.rsplit('/').next()?.parse().ok()?, o.size)))
        .collect();
    let mut by_pack: HashMap<PackId, Vec<(BlobKind, BlobId, BlobLocation)>> = HashMap::new();
    for ((kind, id), loc) in &index.blobs {
        by_pack
            .entry(loc.pack)
            .or_default()
            .push((*kind, *id, *loc));
    }
    for (p, size) in &present {
        if !index.packs.contains_key(p) {
            report.push(
                Severity::Warning,
                format!("pack {} ({size} bytes) is not in the index: left by an interrupted run; `repo prune` removes it", p.short()),
                Some(*p),
            );
        }
    }
    report.packs = index.packs.len();
    progress
        .total_items
        .store(index.packs.len() as u64, Relaxed);
    progress
        .total_bytes
        .store(index.packs.values().sum(), Relaxed);
    progress.totals_final.store(true, Relaxed);

    let mut packs: Vec<(&PackId, &u64)> = index.packs.iter().collect();
    packs.sort();
    let results: Vec<PackResult> = crate::backend::with_read_threads(repo.backend(), || {
        packs
            .par_iter()
            .map(|(id, size)| {
                let blobs = by_pack.get(id).map(Vec::as_slice).unwrap_or(&[]);
                let r = check_one(repo, id, **size, present.get(id).copied(), blobs, read_data);
                progress.done(1, **size);
                let read = if read_data { **size } else { 0 };
                match r {
                    Ok(bad) => PackResult {
                        pack: **id,
                        bad,
                        whole: None,
                        read,
                    },
                    Err(whole) => PackResult {
                        pack: **id,
                        bad: blobs.iter().map(|b| (b.1, whole.clone())).collect(),
                        whole: Some(whole),
                        read,
                    },
                }
            })
            .collect()
    });
    let mut damaged = Damaged::new();
    for PackResult {
        pack,
        bad,
        whole,
        read,
    } in results
    {
        report.bytes_read += read;
        if let Some(why) = whole {
            report.push(
                Severity::Error,
                format!("pack {}: {why}", pack.short()),
                Some(pack),
            );
        } else {
            for (blob, why) in &bad {
                report.push(
                    Severity::Error,
                    format!("pack {}: blob {}: {why}", pack.short(), blob.short()),
                    Some(pack),
                );
            }
        }
        for (blob, why) in bad {
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
    /// Set when the whole pack is unusable.
    whole: Option<String>,
    /// Bytes read from the backend.
    read: u64,
}

/// Checks one pack. `Err` means the whole pack is unusable; `Ok` lists bad blobs.
fn check_one(
    repo: &Repository,
    id: &PackId,
    size: u64,
    actual: Option<u64>,
    blobs: &[(BlobKind, BlobId, BlobLocation)],
    read_data: bool,
) -> std::result::Result<Vec<(BlobId, String)>, String> {
    let Some(actual) = actual else {
        return Err("missing from the repository".into());
    };
    if actual != size {
        return Err(format!(
            "size is {actual} bytes but the index says {size} (truncated or altered)"
        ));
    }
    if !read_data {
        let trailer =
            read_trailer(repo.backend(), repo.key(), id, size).map_err(|e| e.to_string())?;
        return Ok(compare_trailer(&trailer, blobs));
    }
    let bytes = repo
        .backend()
        .get(&pack_path(id))
        .map_err(|e| e.to_string())?;
    let what = format!("pack {}", id.short());
    let hash_ok = crate::hash::content_hash(&bytes) == id.0;
    let mut bad = match parse_pack(repo.key(), &bytes, &what) {
        Ok(trailer) => compare_trailer(&trailer, blobs),
        Err(e) => blobs
            .iter()
            .map(|b| (b.1, format!("trailer unreadable: {e}")))
            .collect(),
    };
    let already: HashSet<BlobId> = bad.iter().map(|b| b.0).collect();
    for (kind, bid, loc) in blobs {
        if already.contains(bid) {
            continue;
        }
        let start = loc.offset as usize;
        let Some(sealed) = bytes.get(start..start + loc.length as usize) else {
            bad.push((*bid, "extends past the end of the pack".into()));
            continue;
        };
        if let Err(e) = repo.open_blob(*kind, bid, sealed, loc) {
            bad.push((*bid, short_reason(&e)));
        }
    }
    if !hash_ok && bad.is_empty() {
        return Err("content does not match its name (bytes outside any blob were altered)".into());
    }
    Ok(bad)
}

fn short_reason(e: &Error) -> String {
    match e {
        Error::Corrupt { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// Blobs the index places differently from the pack's own trailer.
fn compare_trailer(
    trailer: &[PackEntry],
    blobs: &[(BlobKind, BlobId, BlobLocation)],
) -> Vec<(BlobId, String)> {
    let t: HashMap<(BlobKind, BlobId), &PackEntry> =
        trailer.iter().map(|e| ((e.kind, e.id), e)).collect();
    blobs
        .iter()
        .filter_map(|(kind, id, loc)| match t.get(&(*kind, *id)) {
            Some(e)
                if e.offset == loc.offset
                    && e.length == loc.length
                    && e.raw_length == loc.raw_length =>
            {
                None
            }
            Some(_) => Some((
                *id,
                "index and pack trailer disagree on its position".into(),
            )),
            None => Some((
                *id,
                "listed by the index but not by the pack trailer".into(),
            )),
        })
        .collect()
}
