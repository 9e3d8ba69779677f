//! Prune's writes of new packs (live blobs moved out of mostly-dead packs), and the report
//! a dry run gives from the decisions alone.

use super::*;

/// Copies the live blobs of `rewrite` packs into new packs (each verified on the way).
pub(super) fn repack(
    repo: &Repository,
    live: &crate::index::keyset::BlobSet,
    rewrite: &HashSet<PackId>,
    report: &mut PruneReport,
) -> Result<crate::packer::PackerStats> {
    let mut moves: Vec<(BlobKind, BlobId, BlobLocation)> = Vec::new();
    if !rewrite.is_empty() {
        mark::usage(repo, live, |kind, id, loc| {
            if rewrite.contains(&loc.pack) {
                moves.push((kind, *id, *loc));
            }
        })?;
    }
    moves.sort_by_key(|(_, _, l)| (l.pack, l.offset));
    let mut writer = BlobWriter::new(repo);
    for group in moves.chunk_by(|a, b| a.2.pack == b.2.pack) {
        let pack = group[0].2.pack;
        let bytes = repo.backend().get(&pack_path(&pack))?;
        for (kind, id, loc) in group {
            let end = loc.offset as usize + loc.length as usize;
            let sealed = bytes.get(loc.offset as usize..end).ok_or_else(|| {
                Error::corrupt(
                    format!("pack {}", pack.short()),
                    "blob extends past the end of the file",
                )
            })?;
            // Never carry damage forward: the copy must decrypt and hash to its id.
            let data = repo.open_blob(*kind, id, sealed, loc)?;
            writer.carry(*kind, *id, sealed, loc, &data)?;
            report.blobs_copied += 1;
        }
    }
    let written = writer.finish()?;
    report.packs_written = written.packs;
    Ok(written)
}

/// What a run would do, from the decisions alone.
#[allow(clippy::too_many_arguments)]
pub(super) fn dry_run_report(
    mut report: PruneReport,
    usage: &HashMap<PackId, PackUsage>,
    d: &Decision,
    keep: &HashMap<PackId, PendingPack>,
    on_disk: &HashMap<PackId, u64>,
    new_unindexed: &[(PackId, u64)],
    segs: &segments::SegmentPlan,
    opts: &PruneRequest,
    started: Instant,
) -> PruneReport {
    let now = Utc::now();
    let rewrite_live: u64 = d.rewrite.iter().map(|p| usage[p].live_bytes).sum();
    report.blobs_copied = d.rewrite.iter().map(|p| usage[p].live_blobs).sum();
    let newly: u64 = d
        .mark
        .iter()
        .chain(d.rewrite.iter())
        .filter_map(|p| on_disk.get(p))
        .sum::<u64>()
        + new_unindexed.iter().map(|(_, s)| s).sum::<u64>();
    let due: Vec<&PendingPack> = keep.values().filter(|m| m.due(now, opts.grace)).collect();
    report.packs_removed = due.len() as u64;
    report.bytes_removed = due.iter().map(|m| m.size).sum();
    let waiting: u64 = keep.values().map(|m| m.size).sum::<u64>() - report.bytes_removed;
    if opts.grace.is_zero() {
        report.bytes_removed += newly;
        report.packs_removed +=
            report.packs_deleted + report.packs_rewritten + report.packs_unindexed;
    } else {
        report.packs_pending = keep.len() as u64 - due.len() as u64
            + report.packs_deleted
            + report.packs_rewritten
            + report.packs_unindexed;
        report.bytes_pending = waiting + newly;
    }
    report.bytes_freed = report.bytes_removed.saturating_sub(rewrite_live);
    report.segments_after = segs.before - segs.to_rewrite.len() as u64
        + u64::from(!segs.to_rewrite.is_empty())
        + u64::from(!d.rewrite.is_empty());
    report.duration_secs = started.elapsed().as_secs_f64();
    report
}
