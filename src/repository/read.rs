//! Reading blobs back: where a blob is (index, or packs no segment lists), and reading,
//! decrypting and verifying it; immutable objects through the object cache.

use super::*;

impl Repository {
    /// Where a blob is stored, for reading it: the index (caught up with other writers,
    /// then healed once, if it does not know), else a pack no segment lists. Such packs
    /// hold the blobs of a snapshot that was committed after a prune marked them (its
    /// writer's lock was invisible to that prune); the next prune lists them again.
    /// Writers never deduplicate against them.
    pub fn locate(&self, kind: BlobKind, id: &BlobId) -> Result<BlobLocation> {
        if let Some(loc) = self.index()?.lookup(kind, id)? {
            return Ok(loc);
        }
        if self.catch_up_index()? {
            if let Some(loc) = self.index()?.lookup(kind, id)? {
                return Ok(loc);
            }
        }
        if self.heal_index()? {
            if let Some(loc) = self.index()?.lookup(kind, id)? {
                return Ok(loc);
            }
        }
        if let Some(loc) = self.unlisted()?.get(&(kind, *id)) {
            return Ok(*loc);
        }
        Err(Error::Missing(format!(
            "{} blob {} (not in the index)",
            kind_name(kind),
            id.short()
        )))
    }

    /// The blobs of packs no segment lists, from their trailers (read once per process).
    fn unlisted(&self) -> Result<&HashMap<(BlobKind, BlobId), BlobLocation>> {
        if let Some(m) = self.unlisted.get() {
            return Ok(m);
        }
        let listed: std::collections::HashSet<crate::id::PackId> =
            self.index()?.packs()?.into_iter().map(|(p, _)| p).collect();
        let mut map = HashMap::new();
        for (pack, size) in crate::backend::pack_sizes(self.backend())? {
            if listed.contains(&pack) {
                continue;
            }
            // Unreadable or gone: nothing to find there.
            let Ok(entries) =
                crate::pack::reader::read_trailer(self.backend(), &self.key, &pack, size)
            else {
                continue;
            };
            for e in entries {
                map.insert((e.kind, e.id), BlobLocation::new(pack, &e));
            }
        }
        Ok(self.unlisted.get_or_init(|| map))
    }

    /// Reads one blob given its location, verifying that its content hashes to its id.
    pub fn read_blob_at(&self, kind: BlobKind, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let path = pack_path(&loc.pack);
        let (offset, len) = (loc.offset, u64::from(loc.length));
        let fetch = |b: &dyn Backend| b.get_range(&path, offset, len);
        if kind == BlobKind::Tree {
            match self.open_blob(kind, id, &fetch(&self.immutable)?, loc) {
                Err(_)
                    if self.immutable.layer().evict(&Request::GetRange {
                        path: &path,
                        offset,
                        len,
                    }) => {}
                done => return done,
            }
        }
        self.open_blob(kind, id, &fetch(self.backend.as_ref())?, loc)
    }

    /// Decrypts, decompresses and verifies a sealed blob already read from its pack.
    pub fn open_blob(
        &self,
        kind: BlobKind,
        id: &BlobId,
        sealed: &[u8],
        loc: &BlobLocation,
    ) -> Result<Vec<u8>> {
        let what = format!(
            "{} blob {} in pack {}",
            kind_name(kind),
            id.short(),
            loc.pack.short()
        );
        let data = if loc.is_solo() {
            blob::open(&self.key, sealed, loc.raw_length as usize, &what)?
        } else {
            let unit = crate::unit::opened(loc, sealed, || {
                blob::open(&self.key, sealed, loc.unit_length as usize, &what)
            })?;
            let (start, len) = (loc.unit_offset as usize, loc.raw_length as usize);
            unit.get(start..start + len)
                .ok_or_else(|| Error::corrupt(&what, "blob extends past its unit"))?
                .to_vec()
        };
        let actual = match kind {
            BlobKind::Data => BlobId::from(self.hasher.chunk_id(&data)),
            BlobKind::Tree => BlobId::from(self.hasher.tree_id(&data)),
        };
        if actual != *id {
            return Err(Error::corrupt(what, "content does not hash to its id"));
        }
        Ok(data)
    }

    /// Reads one blob by id through the index (healing the index once if it is wrong).
    pub fn read_blob(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.locate(kind, id)?;
        match self.read_blob_at(kind, id, &loc) {
            // The pack is gone: the index predates a prune. Look again in a fresh one.
            Err(Error::Missing(m)) => {
                if self.heal_index()? {
                    let loc = self.locate(kind, id)?;
                    self.read_blob_at(kind, id, &loc)
                } else {
                    Err(Error::Missing(m))
                }
            }
            other => other,
        }
    }

    /// Loads and decodes a tree.
    pub fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        let bytes = self.load_tree_bytes(id)?;
        tree::decode(&bytes, &format!("tree {}", id.short()))
    }

    /// Loads a tree's encoded bytes (verified), for readers that go through its entries
    /// without decoding them into nodes ([`tree::nodes`]).
    pub fn load_tree_bytes(&self, id: &TreeId) -> Result<Vec<u8>> {
        self.read_blob(BlobKind::Tree, &BlobId::from(*id))
    }

    /// Loads one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        self.load_sealed(&snapshot_path(id), |b| Snapshot::open(&self.key, b, id))
    }

    /// Loads one oplog slice record.
    pub fn load_slice(&self, id: &crate::id::SliceId) -> Result<crate::mongo::oplog::slice::Slice> {
        use crate::mongo::oplog::slice::{slice_path, Slice};
        self.load_sealed(&slice_path(id), |b| Slice::open(&self.key, b, id))
    }

    /// The operation log, oldest first, read through the object cache: a record never
    /// changes once written (`forget --keep-log` only deletes), so a remote repository's
    /// history is fetched once per record.
    pub fn log_records(&self) -> Result<(Vec<crate::journal::Record>, crate::journal::Unreadable)> {
        crate::journal::list_via(&*self.backend, |path, name| {
            self.load_sealed(path, |b| {
                let plain = self.key.open(b, name)?;
                crate::journal::Record::decode(&plain, name)
            })
        })
    }

    /// Reads an immutable sealed object through the object cache (remote repositories); a
    /// cached copy that does not open is dropped and read again from the repository.
    fn load_sealed<T>(&self, path: &str, open: impl Fn(&[u8]) -> Result<T>) -> Result<T> {
        match open(&self.immutable.get(path)?) {
            Err(_) if self.immutable.layer().evict(&Request::Get(path)) => {
                open(&self.backend.get(path)?)
            }
            done => done,
        }
    }
}
