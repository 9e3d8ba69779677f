//! The local RocksDB materialisation of the index segments.
//!
//! Keys: `b` kind id → location; `p` pack → size; `s` segment → (empty); `m` name → flag;
//! `d` tree id → the digest of the file entries of that tree (a directory of regular files
//! only), which lets a walk find such a directory unchanged without loading its tree
//! (`ops::snapshot::dirsig`). Everything here is rebuildable from the repository (the
//! digests from the trees), so the WAL is off and writes are flushed explicitly.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use super::segment::PackRecord;
use super::BlobLocation;
use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId, SegmentId, TreeId};

/// RocksDB block cache size; bounds the index's share of resident memory.
const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// An open RocksDB index.
pub struct RocksIndex {
    db: DB,
    path: std::path::PathBuf,
    /// Set for an index only this process uses: its directory goes when it is dropped.
    /// Declared after `db`, so RocksDB has closed its files by then.
    private: Option<RemoveOnDrop>,
}

/// Removes a directory when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::debug!("removing the private index {}: {e}", self.0.display());
        }
    }
}

fn db_err(e: rocksdb::Error) -> Error {
    Error::Invalid(format!("local index (RocksDB): {e}"))
}

fn blob_key(kind: BlobKind, id: &BlobId) -> [u8; 34] {
    let mut k = [0u8; 34];
    k[0] = b'b';
    k[1] = kind.code();
    k[2..].copy_from_slice(id.as_bytes());
    k
}

fn prefixed(tag: u8, id: &[u8; 32]) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = tag;
    k[1..].copy_from_slice(id);
    k
}

/// A blob's value: `pack ‖ offset ‖ length ‖ raw_length ‖ unit_offset ‖ unit_length`;
/// caches written before units (48 bytes, no unit fields) still read as solo blobs.
fn decode_location(v: &[u8]) -> Option<BlobLocation> {
    if v.len() != 48 && v.len() != 56 {
        return None;
    }
    let u32_at = |at: usize| v[at..at + 4].try_into().ok().map(u32::from_le_bytes);
    let raw_length = u32_at(44)?;
    let (unit_offset, unit_length) = if v.len() == 56 {
        (u32_at(48)?, u32_at(52)?)
    } else {
        (0, raw_length)
    };
    Some(BlobLocation {
        pack: PackId::from_slice(&v[..32])?,
        offset: u64::from_le_bytes(v[32..40].try_into().ok()?),
        length: u32_at(40)?,
        raw_length,
        unit_offset,
        unit_length,
    })
}

impl RocksIndex {
    /// Opens (creating if needed) the index at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        // Two memtables of 8 MiB at most (RSS); the index is rebuildable, so no WAL either.
        opts.set_write_buffer_size(8 << 20);
        opts.set_max_write_buffer_number(2);
        opts.set_max_open_files(256);
        opts.set_keep_log_file_num(2);
        // Ids are random, so every look-up lands on a random block. Whole-file filter and
        // index blocks (~1 MB each at a few million blobs) thrashed the cache and cost
        // 50–300 µs per look-up; partitioned ones are read 4 KiB at a time, their top
        // levels stay pinned, and everything stays within the block cache (bounded RSS).
        let mut bbo = BlockBasedOptions::default();
        bbo.set_bloom_filter(10.0, false);
        bbo.set_block_size(4 << 10);
        bbo.set_block_cache(&Cache::new_lru_cache(BLOCK_CACHE_BYTES));
        bbo.set_cache_index_and_filter_blocks(true);
        bbo.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
        bbo.set_partition_filters(true);
        bbo.set_metadata_block_size(4096);
        bbo.set_pin_top_level_index_and_filter(true);
        bbo.set_pin_l0_filter_and_index_blocks_in_cache(true);
        opts.set_block_based_table_factory(&bbo);
        let db = DB::open(&opts, path).map_err(|e| {
            // RocksDB allows one process per database; its LOCK file says who.
            if e.to_string().contains("lock file") {
                Error::Busy(format!("local index {}", path.display()))
            } else {
                Error::Invalid(format!(
                    "cannot open local index at {}: {e}",
                    path.display()
                ))
            }
        })?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            private: None,
        })
    }

    /// Marks the index as this process's alone: its directory is removed once the last
    /// holder drops it (a long-running process may replace it while jobs still read it).
    pub fn remove_when_dropped(mut self) -> Self {
        self.private = Some(RemoveOnDrop(self.path.clone()));
        self
    }

    /// Where a blob is stored, if known.
    pub fn lookup(&self, kind: BlobKind, id: &BlobId) -> Result<Option<BlobLocation>> {
        let v = self.db.get_pinned(blob_key(kind, id)).map_err(db_err)?;
        Ok(v.and_then(|v| decode_location(&v)))
    }

    /// Whether a blob is known.
    pub fn contains(&self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        Ok(self.lookup(kind, id)?.is_some())
    }

    /// Size of a known pack.
    pub fn pack_size(&self, pack: &PackId) -> Result<Option<u64>> {
        let v = self
            .db
            .get_pinned(prefixed(b'p', pack.as_bytes()))
            .map_err(db_err)?;
        Ok(v.and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes)))
    }

    /// Whether a segment has already been merged.
    pub fn has_segment(&self, seg: &SegmentId) -> Result<bool> {
        Ok(self
            .db
            .get_pinned(prefixed(b's', seg.as_bytes()))
            .map_err(db_err)?
            .is_some())
    }

    /// Merges one segment's packs atomically; `seg` may be `None` for packs imported
    /// straight from trailers.
    pub fn insert(&self, seg: Option<&SegmentId>, packs: &[PackRecord]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for p in packs {
            batch.put(prefixed(b'p', p.id.as_bytes()), p.size.to_le_bytes());
            for e in &p.entries {
                let mut v = [0u8; 56];
                v[..32].copy_from_slice(p.id.as_bytes());
                v[32..40].copy_from_slice(&e.offset.to_le_bytes());
                v[40..44].copy_from_slice(&e.length.to_le_bytes());
                v[44..48].copy_from_slice(&e.raw_length.to_le_bytes());
                v[48..52].copy_from_slice(&e.unit_offset.to_le_bytes());
                v[52..56].copy_from_slice(&e.unit_length.to_le_bytes());
                batch.put(blob_key(e.kind, &e.id), v);
            }
        }
        if let Some(s) = seg {
            batch.put(prefixed(b's', s.as_bytes()), []);
        }
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db.write_opt(batch, &wo).map_err(db_err)
    }

    /// The entry digest kept for tree `id` (see `ops::snapshot::dirsig`), if any.
    pub fn dir_digest(&self, id: &TreeId) -> Result<Option<[u8; 32]>> {
        let v = self
            .db
            .get_pinned(prefixed(b'd', id.as_bytes()))
            .map_err(db_err)?;
        Ok(v.and_then(|v| v.as_ref().try_into().ok()))
    }

    /// Keeps `digest` as tree `id`'s entry digest. Trees are named by their content, so a
    /// tree's digest never changes and a second writer writes the same value.
    pub fn put_dir_digest(&self, id: &TreeId, digest: &[u8; 32]) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db
            .put_opt(prefixed(b'd', id.as_bytes()), digest, &wo)
            .map_err(db_err)
    }

    /// Sets or clears a named flag kept with the index (e.g. "degraded").
    pub fn set_flag(&self, name: &str, on: bool) -> Result<()> {
        let key = [b"m".as_slice(), name.as_bytes()].concat();
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        if on {
            self.db.put_opt(key, [], &wo).map_err(db_err)?;
        } else {
            self.db.delete_opt(key, &wo).map_err(db_err)?;
        }
        self.flush()
    }

    /// Whether a named flag is set.
    pub fn flag(&self, name: &str) -> Result<bool> {
        let key = [b"m".as_slice(), name.as_bytes()].concat();
        Ok(self.db.get_pinned(key).map_err(db_err)?.is_some())
    }

    /// Makes everything written so far durable (the WAL is off).
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map_err(db_err)
    }

    /// All merged segment ids.
    pub fn segments(&self) -> Result<Vec<SegmentId>> {
        self.ids_with_tag(b's')
            .map(|v| v.into_iter().map(SegmentId).collect())
    }

    /// All known packs with their sizes.
    pub fn packs(&self) -> Result<Vec<(PackId, u64)>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(b"p", Direction::Forward))
        {
            let (k, v) = item.map_err(db_err)?;
            if k.first() != Some(&b'p') {
                break;
            }
            if let (Some(id), Ok(sz)) =
                (PackId::from_slice(&k[1..]), <[u8; 8]>::try_from(v.as_ref()))
            {
                out.push((id, u64::from_le_bytes(sz)));
            }
        }
        Ok(out)
    }

    /// Visits every blob entry (streaming; nothing is collected).
    pub fn for_each_blob(
        &self,
        mut f: impl FnMut(BlobKind, BlobId, BlobLocation) -> Result<()>,
    ) -> Result<()> {
        for item in self
            .db
            .iterator(IteratorMode::From(b"b", Direction::Forward))
        {
            let (k, v) = item.map_err(db_err)?;
            if k.first() != Some(&b'b') {
                break;
            }
            let kind = k.get(1).and_then(|c| BlobKind::from_code(*c));
            let id = k.get(2..).and_then(BlobId::from_slice);
            if let (Some(kind), Some(id), Some(loc)) = (kind, id, decode_location(&v)) {
                f(kind, id, loc)?;
            }
        }
        Ok(())
    }

    fn ids_with_tag(&self, tag: u8) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(&[tag], Direction::Forward))
        {
            let (k, _) = item.map_err(db_err)?;
            if k.first() != Some(&tag) {
                break;
            }
            if let Ok(id) = <[u8; 32]>::try_from(&k[1..]) {
                out.push(id);
            }
        }
        Ok(out)
    }
}
