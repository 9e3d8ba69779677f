//! An open repository: backend + master key + config, with the local index opened lazily.
//!
//! Write order (the crash-safety invariant): packs → index segments → snapshot object.
//! Anything a snapshot references was durable before the snapshot was written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::backend::Backend;
use crate::blob::{self, BlobKind};
use crate::config::{RepoConfig, CONFIG_PATH};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::hash::IdHasher;
use crate::id::{BlobId, KeyId, SnapshotId, TreeId};
use crate::index::{self, BlobLocation, RocksIndex, SyncReport};
use crate::key::{KdfParams, KeyFile};
use crate::object_cache::ObjectCache;
use crate::pack::pack_path;
use crate::snapshot::{snapshot_path, Snapshot};
use crate::tree::{self, Tree};

/// An open, authenticated repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    config: RepoConfig,
    hasher: IdHasher,
    cache_dir: PathBuf,
    /// The local index once opened; replaced as a whole when it is rebuilt, while
    /// readers holding the old one finish with it.
    index: RwLock<Option<Arc<RocksIndex>>>,
    index_init: Mutex<()>,
    key_id: KeyId,
    /// Private index directories (the shared one was busy, or was found wrong while in
    /// use); removed on drop.
    private_indexes: Mutex<Vec<PathBuf>>,
    /// The locks taken through this handle, checked before committing.
    locks: Mutex<Vec<crate::lock::LockWatch>>,
    /// Local copies of trees and snapshot objects (remote repositories only).
    objects: ObjectCache,
    /// Whether [`Repository::heal_index`] already rebuilt the index in this process.
    healed: AtomicBool,
    /// Damaged snapshot objects seen (and warned about) so far.
    damaged: Mutex<Vec<(SnapshotId, String)>>,
    /// Blobs of packs no segment lists, found when the index lacked one (reads only).
    unlisted: std::sync::OnceLock<HashMap<(BlobKind, BlobId), BlobLocation>>,
}

/// Unwraps the master key with the first key file `password` opens. Key files are tried
/// cheapest first; one that is damaged or asks for absurd KDF costs is skipped (and named
/// if no key opens), so it can neither lock others out nor make every open slow.
fn open_any_key(backend: &dyn Backend, password: &[u8]) -> Result<(KeyId, MasterKey)> {
    let mut candidates = Vec::new();
    let mut damaged = Vec::new();
    for (id, obj) in crate::backend::list_ids::<KeyId>(backend, "keys/")? {
        match KeyFile::decode(&backend.get(&obj.path)?)
            .and_then(|kf| kf.kdf.check_bounds().map(|()| kf))
        {
            Ok(kf) => candidates.push((id, kf)),
            Err(e) => damaged.push(format!("key {}: {e}", id.short())),
        }
    }
    candidates.sort_by_key(|(_, kf)| kf.kdf.cost());
    for (id, kf) in &candidates {
        match kf.unwrap_master(password) {
            Ok(Some(m)) => {
                for d in &damaged {
                    tracing::warn!("{d} (skipped; remove it with `repo key remove`)");
                }
                return Ok((*id, m));
            }
            Ok(None) => {}
            Err(e) => damaged.push(format!("key {}: {e}", id.short())),
        }
    }
    if candidates.is_empty() && !damaged.is_empty() {
        return Err(Error::corrupt(
            "key files",
            format!("no key file can be read: {}", damaged.join("; ")),
        ));
    }
    if !damaged.is_empty() {
        tracing::warn!(
            "{} key file(s) could not be used: {}",
            damaged.len(),
            damaged.join("; ")
        );
    }
    Err(Error::WrongPassword)
}

/// Says which segments could not be read, and what was done instead.
fn warn_damaged(report: &SyncReport) {
    for d in &report.damaged_segments {
        tracing::warn!("{d}");
    }
    if !report.damaged_segments.is_empty() {
        tracing::warn!(
            "{} pack(s) found through their trailers instead; run `repo repair index` to rewrite the damaged segment(s)",
            report.packs_from_trailers
        );
    }
}

/// Object name of a key file.
pub fn key_path(id: &KeyId) -> String {
    format!("keys/{}", id.to_hex())
}

impl Repository {
    /// Creates a new repository: key file first, config last (the config marks it complete).
    pub fn init(
        backend: &dyn Backend,
        password: &[u8],
        config: RepoConfig,
        kdf: KdfParams,
    ) -> Result<RepoConfig> {
        config.validate()?;
        if backend.exists(CONFIG_PATH)? {
            return Err(Error::AlreadyExists(backend.location()));
        }
        // Only an empty place, or what an interrupted init left (key files, temporaries):
        // never mix a repository into other data, or other data into a repository.
        let found = backend.top_level()?;
        let foreign: Vec<&String> = found
            .iter()
            .filter(|n| {
                let n = n.trim_start_matches('/');
                !(n == "keys"
                    || n == "keys/"
                    || n.starts_with("keys/")
                    || n.starts_with(".tmp-")
                    || n == crate::backend::local::RESERVE_NAME)
            })
            .collect();
        if !foreign.is_empty() {
            let shown: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
            return Err(Error::Refused(format!(
                "{} is not empty and is not a repository (it holds {}{}); choose an empty or new location",
                backend.location(),
                shown.join(", "),
                if foreign.len() > 5 { ", …" } else { "" }
            )));
        }
        for old in backend.list("keys/")? {
            backend.delete(&old.path)?;
        }
        let master = MasterKey::generate();
        let kf = KeyFile::wrap(&master, password, kdf)?;
        backend.put(&key_path(&KeyId::random()), &kf.encode())?;
        backend.put(CONFIG_PATH, &config.seal(&master))?;
        backend.restrict_access()?;
        backend.keep_reserve()?;
        Ok(config)
    }

    /// Opens a repository with a password; the local cache lives under `cache_root/<repo id>`.
    pub fn open(backend: Arc<dyn Backend>, password: &[u8], cache_root: &Path) -> Result<Self> {
        if !backend.exists(CONFIG_PATH)? {
            return Err(Error::NoRepository(backend.location()));
        }
        let (key_id, key) = open_any_key(backend.as_ref(), password)?;
        let config = RepoConfig::open(&key, &backend.get(CONFIG_PATH)?)?;
        let hasher = IdHasher::new(key.id_key());
        let cache_dir = cache_root.join(config.id.to_hex());
        let objects = ObjectCache::new(backend.is_remote().then(|| cache_dir.join("objects")));
        Ok(Self {
            objects,
            backend,
            key,
            config,
            hasher,
            cache_dir,
            index: RwLock::new(None),
            index_init: Mutex::new(()),
            key_id,
            locks: Mutex::new(Vec::new()),
            private_indexes: Mutex::new(Vec::new()),
            healed: AtomicBool::new(false),
            damaged: Mutex::new(Vec::new()),
            unlisted: std::sync::OnceLock::new(),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The backend, for work that outlives a borrow of the repository (upload threads).
    pub fn shared_backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    /// The master key.
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// Id of the key file that opened the repository.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// Blob id hasher.
    pub fn hasher(&self) -> &IdHasher {
        &self.hasher
    }

    /// This repository's local cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The local index, opened and synced with the repository's segments on first use.
    /// Never writes to the repository: readers call this without a lock.
    pub fn index(&self) -> Result<Arc<RocksIndex>> {
        if let Some(i) = self.current_index() {
            return Ok(i);
        }
        // Only one thread may open RocksDB: a second open of the same directory fails.
        let _guard = self.index_init.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = self.current_index() {
            return Ok(i);
        }
        let idx = Arc::new(self.open_index()?);
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(idx.clone());
        Ok(idx)
    }

    fn current_index(&self) -> Option<Arc<RocksIndex>> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A fresh directory for an index only this process uses.
    fn private_index_dir(&self) -> PathBuf {
        let dir = self.cache_dir.join(format!(
            "index-private-{}-{}",
            std::process::id(),
            hex::encode(rand::random::<[u8; 4]>())
        ));
        self.private_indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(dir.clone());
        dir
    }

    fn open_index(&self) -> Result<RocksIndex> {
        let dir = index::index_dir(&self.cache_dir);
        std::fs::create_dir_all(&self.cache_dir)
            .map_err(|e| Error::io(format!("creating cache {}", self.cache_dir.display()), e))?;
        let opened = match RocksIndex::open(&dir) {
            Ok(i) => i,
            Err(Error::Busy(_)) => {
                // Another process on this host (say, a second snapshot) has the shared
                // cache open. Build a private one from the segments; dropped with us.
                let private = self.private_index_dir();
                let (idx, report) = index::rebuild(&private, self.backend(), &self.key)?;
                warn_damaged(&report);
                return Ok(idx);
            }
            Err(e) => {
                // A damaged cache is only a cache: start it over from the repository.
                tracing::warn!(
                    "the local index at {} is unusable ({e}); rebuilding it from the repository",
                    dir.display()
                );
                let (idx, report) = index::rebuild(&dir, self.backend(), &self.key)?;
                warn_damaged(&report);
                return Ok(idx);
            }
        };
        let (report, stale) = match index::sync(&opened, self.backend(), &self.key) {
            Ok(r) => r,
            Err(e @ (Error::Storage(_) | Error::Io { .. })) => return Err(e),
            Err(e) => {
                tracing::warn!("the local index could not be brought up to date ({e}); rebuilding it from the repository");
                (SyncReport::default(), true)
            }
        };
        if !stale {
            warn_damaged(&report);
            return Ok(opened);
        }
        drop(opened);
        let (idx, report) = index::rebuild(&dir, self.backend(), &self.key)?;
        warn_damaged(&report);
        Ok(idx)
    }

    /// Drops and rebuilds the local index from the segments (`repo index rebuild`); with
    /// `adopt`, also lists packs no segment lists in a new segment, which writes to the
    /// repository: the caller must hold the exclusive lock.
    pub fn rebuild_index(&mut self, adopt: bool) -> Result<SyncReport> {
        // Close the current index first: RocksDB cannot reopen a directory still open.
        self.index
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        std::fs::create_dir_all(&self.cache_dir)
            .map_err(|e| Error::io(format!("creating cache {}", self.cache_dir.display()), e))?;
        let (idx, mut report) = index::rebuild(
            &index::index_dir(&self.cache_dir),
            self.backend(),
            &self.key,
        )?;
        if adopt {
            let adopted = index::adopt_unlisted(&idx, self.backend(), &self.key)?;
            idx.set_flag(index::DEGRADED, false)?;
            report.packs_from_trailers = adopted.packs_from_trailers;
            report.damaged_segments.extend(adopted.damaged_segments);
        }
        *self.index.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(idx));
        Ok(report)
    }

    /// Once per process, when the local index failed to name a blob the repository should
    /// have (or named a pack that is gone): builds a fresh index from the repository for
    /// this process and marks the shared one for a rebuild at its next open. Returns
    /// whether it did anything (false: it already had, so the blob is really missing).
    pub fn heal_index(&self) -> Result<bool> {
        if self.healed.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        let _guard = self.index_init.lock().unwrap_or_else(|p| p.into_inner());
        tracing::warn!(
            "the local index does not match the repository; rebuilding it from the repository"
        );
        if let Some(old) = self.current_index() {
            old.set_flag(index::DEGRADED, true)?;
        }
        let private = self.private_index_dir();
        let (idx, report) = index::rebuild(&private, self.backend(), &self.key)?;
        warn_damaged(&report);
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(idx));
        Ok(true)
    }

    /// Where a blob is stored, for reading it: the index (healed once if it does not
    /// know), else a pack no segment lists. Such packs hold the blobs of a snapshot that
    /// was committed after a prune marked them (its writer's lock was invisible to that
    /// prune); the next prune lists them again. Writers never deduplicate against them.
    pub fn locate(&self, kind: BlobKind, id: &BlobId) -> Result<BlobLocation> {
        if let Some(loc) = self.index()?.lookup(kind, id)? {
            return Ok(loc);
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
                map.insert(
                    (e.kind, e.id),
                    BlobLocation {
                        pack,
                        offset: e.offset,
                        length: e.length,
                        raw_length: e.raw_length,
                    },
                );
            }
        }
        Ok(self.unlisted.get_or_init(|| map))
    }

    /// Reads one blob given its location, verifying that its content hashes to its id.
    pub fn read_blob_at(&self, kind: BlobKind, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let fetch = || {
            self.backend
                .get_range(&pack_path(&loc.pack), loc.offset, u64::from(loc.length))
        };
        if kind == BlobKind::Tree && self.objects.enabled() {
            let key = format!("trees/{}", id.to_hex());
            let sealed = self.objects.get_or_fetch(&key, fetch)?;
            match self.open_blob(kind, id, &sealed, loc) {
                Ok(data) => return Ok(data),
                Err(_) => self.objects.forget(&key),
            }
        }
        self.open_blob(kind, id, &fetch()?, loc)
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
        let data = blob::open(&self.key, sealed, loc.raw_length as usize, &what)?;
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
        let bytes = self.read_blob(BlobKind::Tree, &BlobId::from(*id))?;
        tree::decode(&bytes, &format!("tree {}", id.short()))
    }

    /// Loads one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        self.load_sealed(&snapshot_path(id), |b| Snapshot::open(&self.key, b, id))
    }

    /// Loads one oplog slice record.
    pub fn load_slice(&self, id: &crate::id::SliceId) -> Result<crate::oplog::slice::Slice> {
        use crate::oplog::slice::{slice_path, Slice};
        self.load_sealed(&slice_path(id), |b| Slice::open(&self.key, b, id))
    }

    /// Reads an immutable sealed object through the object cache (remote repositories); a
    /// cached copy that does not open is dropped and read again from the repository.
    fn load_sealed<T>(&self, path: &str, open: impl Fn(&[u8]) -> Result<T>) -> Result<T> {
        if self.objects.enabled() {
            let sealed = self.objects.get_or_fetch(path, || self.backend.get(path))?;
            match open(&sealed) {
                Ok(v) => return Ok(v),
                Err(_) => self.objects.forget(path),
            }
        }
        open(&self.backend.get(path)?)
    }

    /// All snapshot ids in the repository.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(crate::backend::list_ids(self.backend(), "snapshots/")?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// All readable snapshots, oldest first. A snapshot object that cannot be decrypted
    /// or decoded is left out with a warning (once per process) and listed by
    /// [`Repository::damaged_snapshots`]: one bad object must not stop every command.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        for id in self.snapshot_ids()? {
            match self.load_snapshot(&id) {
                Ok(s) => out.push(s),
                Err(e @ Error::Corrupt { .. }) => damaged.push((id, e.to_string())),
                // Removed since the listing (a concurrent forget).
                Err(Error::Missing(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut known = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        for (id, why) in damaged {
            if !known.iter().any(|(k, _)| *k == id) {
                tracing::warn!(
                    "snapshot {} is damaged and left out ({why}); remove it with `repo forget {}`",
                    id.short(),
                    id.short()
                );
                known.push((id, why));
            }
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Snapshot objects found damaged so far by [`Repository::snapshots`], with why.
    pub fn damaged_snapshots(&self) -> Vec<(SnapshotId, String)> {
        self.damaged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The id of the snapshot object a full id or unique prefix names, without reading
    /// it (so a damaged snapshot can still be named, e.g. to forget it).
    pub fn resolve_snapshot_id(&self, sel: &str) -> Result<SnapshotId> {
        let sel_lc = sel.to_ascii_lowercase();
        if sel_lc.is_empty() || !sel_lc.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Selection(format!(
                "{sel:?} is not a snapshot id (expected hex digits or \"latest\")"
            )));
        }
        let matches: Vec<SnapshotId> = self
            .snapshot_ids()?
            .into_iter()
            .filter(|id| id.to_hex().starts_with(&sel_lc))
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::Selection(format!("no snapshot matches {sel:?}"))),
            many => Err(Error::Selection(format!(
                "{sel:?} is ambiguous: it matches {} snapshots; give more digits",
                many.len()
            ))),
        }
    }

    /// Resolves `latest`, a full id or a unique id prefix.
    pub fn find_snapshot(&self, sel: &str) -> Result<Snapshot> {
        if sel == "latest" {
            return self
                .snapshots()?
                .pop()
                .ok_or_else(|| Error::Selection("the repository has no snapshots yet".into()));
        }
        let id = self.resolve_snapshot_id(sel)?;
        self.load_snapshot(&id).map_err(|e| match e {
            Error::Corrupt { what, detail } => Error::Corrupt {
                what,
                detail: format!(
                    "{detail}; the snapshot cannot be used (remove it with `repo forget {}`)",
                    id.short()
                ),
            },
            other => other,
        })
    }

    /// Total bytes of the repository's objects (what it occupies on its backend).
    pub fn total_size(&self) -> Result<u64> {
        let mut n = 0;
        for prefix in ["packs/", "index/", "snapshots/", "keys/", "locks/"] {
            n += self
                .backend
                .list(prefix)?
                .iter()
                .map(|o| o.size)
                .sum::<u64>();
        }
        Ok(n)
    }

    /// Headroom under the quota in bytes (`None` without a quota); fails when the
    /// repository is already at or over it.
    pub fn quota_headroom(&self) -> Result<Option<u64>> {
        let settings = crate::settings::Settings::load(self.backend(), &self.key)?;
        let Some(quota) = settings.quota_bytes else {
            return Ok(None);
        };
        let used = self.total_size()?;
        if used >= quota {
            return Err(Error::Refused(format!(
                "the repository uses {used} bytes, at or over its quota of {quota} bytes; \
                 forget and prune old snapshots, or raise it with `repo settings --quota`"
            )));
        }
        Ok(Some(quota - used))
    }

    /// Takes a repository lock for `command` (see [`crate::lock`]), waiting up to `wait`.
    pub fn lock(
        &self,
        kind: crate::lock::LockKind,
        command: &str,
        wait: std::time::Duration,
    ) -> Result<crate::lock::Lock> {
        let lock =
            crate::lock::Lock::acquire(self.backend.clone(), &self.key, kind, command, wait)?;
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(lock.watch());
        Ok(lock)
    }

    /// The locks still held through this handle.
    fn watches(&self) -> Vec<crate::lock::LockWatch> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|w| !w.released());
        locks.clone()
    }

    /// Fails when a lock taken through this handle may no longer hold (a refresh failed
    /// or came too late, or its object was removed): another process may then have taken
    /// it for stale, so nothing more may be committed.
    pub fn check_locks(&self) -> Result<()> {
        self.watches().iter().try_for_each(|w| w.verify())
    }

    /// Before deleting anything under an exclusive lock: [`Repository::check_locks`], and
    /// no other live lock appeared meanwhile.
    pub fn check_alone(&self) -> Result<()> {
        let watches = self.watches();
        if watches.is_empty() {
            return Err(Error::Invalid(
                "deleting from the repository needs the exclusive lock".into(),
            ));
        }
        watches.iter().try_for_each(|w| w.verify_alone())
    }

    /// Stores a snapshot object — the last write of a backup run.
    pub fn save_snapshot(&self, s: &Snapshot) -> Result<()> {
        self.check_locks()?;
        self.backend.put(&snapshot_path(&s.id), &s.seal(&self.key))
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        // Close RocksDB before removing its files.
        drop(
            self.index
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        for dir in self
            .private_indexes
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// "data" or "tree".
pub fn kind_name(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::Data => "data",
        BlobKind::Tree => "tree",
    }
}
