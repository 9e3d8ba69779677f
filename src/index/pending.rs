//! Packs marked for deletion (`pending/<id>` objects, format-spec/layout.md).
//!
//! Prune never deletes a pack in the run that finds it unneeded. It first takes the pack
//! out of every index segment and records it here with the time; a later prune deletes it
//! once that mark is older than the grace period and no segment lists it again. Anyone
//! who read the index before the mark and still uses the pack (a writer on another host
//! whose lock prune could not see) has by then either committed — and prune, finding the
//! pack's blobs live, lists the pack again ("adopts" it) — or lost its lock and given up.
//! Writers only deduplicate against blobs of listed packs, so a marked pack is never
//! chosen afresh.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{PackId, PendingId};

/// Version of the record's JSON.
pub const PENDING_VERSION: u32 = 1;
/// Object name prefix of the records.
pub const PENDING_PREFIX: &str = "pending/";

/// Why a pack was marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// No snapshot or oplog slice needs anything in it.
    Unused,
    /// Its live blobs were copied into new packs.
    Rewritten,
    /// No segment listed it (left by an interrupted writer).
    Unindexed,
    /// Its trailer or blobs are damaged; `repair` copied what was intact elsewhere.
    Damaged,
}

/// One marked pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPack {
    /// The pack.
    pub id: PackId,
    /// Its size in bytes when marked.
    pub size: u64,
    /// When a prune marked it.
    pub marked: DateTime<Utc>,
    /// Why.
    pub reason: Reason,
}

impl PendingPack {
    /// Whether the mark is at least `grace` old at `now`.
    pub fn due(&self, now: DateTime<Utc>, grace: std::time::Duration) -> bool {
        now.signed_duration_since(self.marked)
            .to_std()
            .is_ok_and(|age| age >= grace)
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    packs: Vec<PendingPack>,
}

/// Every mark in the repository.
#[derive(Debug, Default)]
pub struct Pending {
    /// Marked packs (the earliest mark wins when records overlap).
    pub packs: HashMap<PackId, PendingPack>,
    /// The record objects these came from (replaced as a whole by [`replace`]).
    pub objects: Vec<String>,
    /// Records that could not be read, with the reason. Their packs are unknown, so
    /// nothing may be deleted on their account.
    pub damaged: Vec<String>,
    /// The object names of those records.
    pub damaged_objects: Vec<String>,
}

/// Object name of a record.
pub fn pending_path(id: &PendingId) -> String {
    format!("{PENDING_PREFIX}{}", id.to_hex())
}

/// Decodes a record's plaintext.
pub fn decode(plain: &[u8], what: &str) -> Result<Vec<PendingPack>> {
    let r: Record =
        serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e.to_string()))?;
    if r.version != PENDING_VERSION {
        return Err(Error::corrupt(
            what,
            format!("unsupported pending-deletion record version {}", r.version),
        ));
    }
    Ok(r.packs)
}

/// Reads every record.
pub fn load(backend: &dyn Backend, key: &MasterKey) -> Result<Pending> {
    let mut out = Pending::default();
    for (id, obj) in crate::backend::list_ids::<PendingId>(backend, PENDING_PREFIX)? {
        let what = format!("pending-deletion record {}", id.short());
        let read = backend
            .get(&obj.path)
            .and_then(|b| key.open(&b, &what))
            .and_then(|p| decode(&p, &what));
        match read {
            Ok(packs) => {
                for p in packs {
                    let keep_older = out
                        .packs
                        .get(&p.id)
                        .is_some_and(|old| old.marked <= p.marked);
                    if !keep_older {
                        out.packs.insert(p.id, p);
                    }
                }
                out.objects.push(obj.path);
            }
            // Gone since the listing: another prune replaced it.
            Err(Error::Missing(_)) => {}
            Err(e @ Error::Corrupt { .. }) => {
                out.damaged.push(e.to_string());
                out.damaged_objects.push(obj.path);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Writes one record holding `packs`, then deletes the records in `old` (write first: a
/// crash in between leaves marks twice, never a pack unmarked).
pub fn replace(
    backend: &dyn Backend,
    key: &MasterKey,
    packs: &[PendingPack],
    old: &[String],
) -> Result<()> {
    let mut sorted = packs.to_vec();
    sorted.sort_by_key(|p| p.id);
    if !sorted.is_empty() {
        let plain = serde_json::to_vec(&Record {
            version: PENDING_VERSION,
            packs: sorted,
        })
        .map_err(|e| Error::Invalid(format!("encoding pending-deletion record: {e}")))?;
        backend.put(&pending_path(&PendingId::random()), &key.seal(&plain))?;
    }
    for o in old {
        backend.delete(o)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    fn mark(n: u8, secs_ago: i64) -> PendingPack {
        PendingPack {
            id: PackId([n; 32]),
            size: u64::from(n) * 100,
            marked: Utc::now() - chrono::Duration::seconds(secs_ago),
            reason: Reason::Unused,
        }
    }

    #[test]
    fn records_merge_keep_the_earliest_mark_and_replace_atomically() {
        let b = MemoryBackend::new();
        let k = MasterKey::generate();
        replace(&b, &k, &[mark(1, 100), mark(2, 10)], &[]).unwrap();
        replace(&b, &k, &[mark(1, 5), mark(3, 0)], &[]).unwrap();
        let p = load(&b, &k).unwrap();
        assert_eq!((p.packs.len(), p.objects.len()), (3, 2));
        let grace = std::time::Duration::from_secs(50);
        assert!(p.packs[&PackId([1; 32])].due(Utc::now(), grace));
        assert!(!p.packs[&PackId([2; 32])].due(Utc::now(), grace));
        let keep: Vec<PendingPack> = p.packs.values().cloned().collect();
        replace(&b, &k, &keep, &p.objects).unwrap();
        let again = load(&b, &k).unwrap();
        assert_eq!((again.packs.len(), again.objects.len()), (3, 1));
        assert_eq!(again.packs, p.packs);
        // Emptied: no record at all.
        replace(&b, &k, &[], &again.objects).unwrap();
        assert!(b.list(PENDING_PREFIX).unwrap().is_empty());
    }

    #[test]
    fn damaged_records_are_reported_not_fatal() {
        let b = MemoryBackend::new();
        let k = MasterKey::generate();
        b.put(&pending_path(&PendingId::random()), b"garbage")
            .unwrap();
        let p = load(&b, &k).unwrap();
        assert_eq!(p.damaged.len(), 1);
        assert!(decode(br#"{"version":9,"packs":[]}"#, "x").is_err());
    }
}
