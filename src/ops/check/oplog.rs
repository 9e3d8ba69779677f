//! Oplog slices: each must open, and every chunk it names must be indexed and readable.

use crate::blob::BlobKind;
use crate::error::Result;
use crate::id::{BlobId, SliceId};
use crate::repository::Repository;

use super::packs::Damaged;
use super::{CheckReport, FindingKind, SegmentIndex, Severity};

pub(super) fn check_slices(
    repo: &Repository,
    ids: &[SliceId],
    index: &SegmentIndex,
    damaged: &Damaged,
    report: &mut CheckReport,
) -> Result<()> {
    use rayon::prelude::*;
    let all: Vec<_> = crate::backend::with_read_threads(repo.backend(), || {
        ids.par_iter().map(|id| repo.load_slice(id)).collect()
    });
    for (id, loaded) in ids.iter().zip(all) {
        let loaded = match loaded {
            // Removed by a forget since it was listed.
            Err(crate::error::Error::Missing(_)) => continue,
            loaded => loaded,
        };
        report.slices += 1;
        let slice = match loaded {
            Ok(s) => s,
            Err(e) => {
                report.push(
                    Severity::Error,
                    FindingKind::SliceDamaged,
                    format!("oplog slice {}: {e}", id.short()),
                    None,
                );
                continue;
            }
        };
        let mut bad = Vec::new();
        for c in &slice.chunks {
            let b = BlobId::from(*c);
            if let Some((pack, why)) = damaged.get(&b) {
                bad.push(format!(
                    "chunk {} in pack {}: {why}",
                    b.short(),
                    pack.short()
                ));
            } else if !index.blobs.contains_key(&(BlobKind::Data, b)) {
                bad.push(format!("chunk {} is not in any pack", b.short()));
            }
        }
        if !bad.is_empty() {
            report.push(
                Severity::Error,
                FindingKind::SliceDamaged,
                format!(
                    "oplog slice {} ({} entries up to {}:{}) cannot be replayed: {}",
                    id.short(),
                    slice.entries,
                    slice.until.t,
                    slice.until.i,
                    bad.join("; ")
                ),
                None,
            );
        }
    }
    Ok(())
}
