//! A temporary on-disk set of blob keys (RocksDB), for passes over every blob of a
//! repository — prune's mark phase, stats — that must not hold every id in memory.
//! Keys sort like the index's blob keys (kind, then id), so a set and the index can be
//! merge-joined in one streaming pass. The directory is removed on drop.

use std::path::{Path, PathBuf};

use rocksdb::{IteratorMode, Options, WriteBatch, WriteOptions, DB};

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::BlobId;

/// Writes buffered before they go to RocksDB.
const BATCH: usize = 4096;

/// An on-disk set of (kind, blob id).
pub struct BlobSet {
    db: Option<DB>,
    dir: PathBuf,
    batch: WriteBatch,
}

fn key(kind: BlobKind, id: &BlobId) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = kind.code();
    k[1..].copy_from_slice(id.as_bytes());
    k
}

fn db_err(e: rocksdb::Error) -> Error {
    Error::Invalid(format!("temporary blob set (RocksDB): {e}"))
}

impl BlobSet {
    /// Creates an empty set in a fresh directory below `parent`.
    pub fn create(parent: &Path, name: &str) -> Result<Self> {
        let dir = parent.join(format!("{name}-{}", hex::encode(rand::random::<[u8; 6]>())));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_write_buffer_size(32 << 20);
        opts.set_keep_log_file_num(1);
        let db = DB::open(&opts, &dir).map_err(db_err)?;
        Ok(Self {
            db: Some(db),
            dir,
            batch: WriteBatch::default(),
        })
    }

    fn db(&self) -> Result<&DB> {
        self.db
            .as_ref()
            .ok_or_else(|| Error::Invalid("blob set already closed".into()))
    }

    /// Adds a blob (buffered; visible to `contains` after the next flush).
    pub fn insert(&mut self, kind: BlobKind, id: &BlobId) -> Result<()> {
        self.batch.put(key(kind, id), []);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered inserts.
    pub fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db()?.write_opt(batch, &wo).map_err(db_err)
    }

    /// Whether a blob is in the set (flushes first).
    pub fn contains(&mut self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        if !self.batch.is_empty() {
            self.flush()?;
        }
        Ok(self
            .db()?
            .get_pinned(key(kind, id))
            .map_err(db_err)?
            .is_some())
    }

    /// Visits every member in (kind, id) order.
    pub fn for_each(&mut self, mut f: impl FnMut(BlobKind, BlobId) -> Result<()>) -> Result<()> {
        self.flush()?;
        for item in self.db()?.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(db_err)?;
            let kind = k.first().and_then(|c| BlobKind::from_code(*c));
            let id = k.get(1..).and_then(BlobId::from_slice);
            if let (Some(kind), Some(id)) = (kind, id) {
                f(kind, id)?;
            }
        }
        Ok(())
    }

    /// Iterator over members in (kind, id) order (call `flush` first).
    pub fn iter(&self) -> Result<impl Iterator<Item = Result<(BlobKind, BlobId)>> + '_> {
        Ok(self
            .db()?
            .iterator(IteratorMode::Start)
            .filter_map(|item| match item {
                Err(e) => Some(Err(db_err(e))),
                Ok((k, _)) => {
                    let kind = k.first().and_then(|c| BlobKind::from_code(*c))?;
                    let id = k.get(1..).and_then(BlobId::from_slice)?;
                    Some(Ok((kind, id)))
                }
            }))
    }
}

impl Drop for BlobSet {
    fn drop(&mut self) {
        drop(self.db.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Orders blob keys the way both the index and a [`BlobSet`] iterate.
pub fn order(a: (BlobKind, &BlobId), b: (BlobKind, &BlobId)) -> std::cmp::Ordering {
    (a.0.code(), a.1.as_bytes()).cmp(&(b.0.code(), b.1.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_back_sorted_and_the_directory_goes() {
        let parent = tempfile::tempdir().unwrap();
        let mut s = BlobSet::create(parent.path(), "t").unwrap();
        let ids: Vec<BlobId> = (0..10_000).map(|_| BlobId::random()).collect();
        for id in &ids {
            s.insert(BlobKind::Data, id).unwrap();
        }
        s.insert(BlobKind::Tree, &ids[0]).unwrap();
        assert!(s.contains(BlobKind::Data, &ids[5]).unwrap());
        assert!(!s.contains(BlobKind::Tree, &ids[5]).unwrap());
        let mut got = Vec::new();
        s.for_each(|k, id| {
            got.push((k, id));
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 10_001);
        assert!(got
            .windows(2)
            .all(|w| order((w[0].0, &w[0].1), (w[1].0, &w[1].1)).is_lt()));
        drop(s);
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }
}
