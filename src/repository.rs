//! An open repository: backend + master key + config, with the local index opened lazily.
//!
//! Write order (the crash-safety invariant): packs → index segments → snapshot object.
//! Anything a snapshot references was durable before the snapshot was written.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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
    index: OnceLock<RocksIndex>,
    index_init: Mutex<()>,
    key_id: KeyId,
    /// A private index directory used when the shared one was busy; removed on drop.
    private_index: Mutex<Option<PathBuf>>,
    /// Heartbeat-failure flags of the locks taken through this handle.
    locks_lost: Mutex<Vec<Arc<std::sync::atomic::AtomicBool>>>,
    /// Local copies of trees and snapshot objects (remote repositories only).
    objects: ObjectCache,
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
        let master = MasterKey::generate();
        let kf = KeyFile::wrap(&master, password, kdf)?;
        backend.put(&key_path(&KeyId::random()), &kf.encode())?;
        backend.put(CONFIG_PATH, &config.seal(&master))?;
        Ok(config)
    }

    /// Opens a repository with a password; the local cache lives under `cache_root/<repo id>`.
    pub fn open(backend: Arc<dyn Backend>, password: &[u8], cache_root: &Path) -> Result<Self> {
        if !backend.exists(CONFIG_PATH)? {
            return Err(Error::NoRepository(backend.location()));
        }
        let keys = backend.list("keys/")?;
        let mut found = None;
        for obj in &keys {
            let Some(id) = obj
                .path
                .strip_prefix("keys/")
                .and_then(|n| n.parse::<KeyId>().ok())
            else {
                continue;
            };
            let kf = match KeyFile::decode(&backend.get(&obj.path)?) {
                Ok(kf) => kf,
                Err(_) => continue,
            };
            if let Some(m) = kf.unwrap_master(password)? {
                found = Some((id, m));
                break;
            }
        }
        let (key_id, key) = found.ok_or(Error::WrongPassword)?;
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
            index: OnceLock::new(),
            index_init: Mutex::new(()),
            key_id,
            locks_lost: Mutex::new(Vec::new()),
            private_index: Mutex::new(None),
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
    pub fn index(&self) -> Result<&RocksIndex> {
        if let Some(i) = self.index.get() {
            return Ok(i);
        }
        // Only one thread may open RocksDB: a second open of the same directory fails.
        let _guard = self.index_init.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = self.index.get() {
            return Ok(i);
        }
        let dir = index::index_dir(&self.cache_dir);
        std::fs::create_dir_all(&self.cache_dir)
            .map_err(|e| Error::io(format!("creating cache {}", self.cache_dir.display()), e))?;
        let opened = match RocksIndex::open(&dir) {
            Ok(i) => i,
            Err(Error::Busy(_)) => {
                // Another process on this host (say, a second snapshot) has the shared
                // cache open. Build a private one from the segments; dropped with us.
                let private = self.cache_dir.join(format!(
                    "index-private-{}-{}",
                    std::process::id(),
                    hex::encode(rand::random::<[u8; 4]>())
                ));
                *self.private_index.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(private.clone());
                let idx = index::rebuild(&private, self.backend(), &self.key, false)?.0;
                let _ = self.index.set(idx);
                return self
                    .index
                    .get()
                    .ok_or_else(|| Error::Invalid("local index unavailable".into()));
            }
            Err(e) => return Err(e),
        };
        let (_, stale) = index::sync(&opened, self.backend(), &self.key)?;
        let idx = if stale {
            drop(opened);
            index::rebuild(&dir, self.backend(), &self.key, false)?.0
        } else {
            opened
        };
        let _ = self.index.set(idx);
        self.index
            .get()
            .ok_or_else(|| Error::Invalid("local index unavailable".into()))
    }

    /// Drops and rebuilds the local index (`repo index rebuild`).
    pub fn rebuild_index(&mut self, from_packs: bool) -> Result<SyncReport> {
        self.index = OnceLock::new();
        std::fs::create_dir_all(&self.cache_dir)
            .map_err(|e| Error::io(format!("creating cache {}", self.cache_dir.display()), e))?;
        let (idx, report) = index::rebuild(
            &index::index_dir(&self.cache_dir),
            self.backend(),
            &self.key,
            from_packs,
        )?;
        let _ = self.index.set(idx);
        Ok(report)
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

    /// Reads one blob by id through the index.
    pub fn read_blob(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.index()?.lookup(kind, id)?.ok_or_else(|| {
            Error::Missing(format!(
                "{} blob {} (not in the index)",
                kind_name(kind),
                id.short()
            ))
        })?;
        self.read_blob_at(kind, id, &loc)
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
        Ok(self
            .backend
            .list("snapshots/")?
            .into_iter()
            .filter_map(|o| {
                o.path
                    .strip_prefix("snapshots/")
                    .and_then(|n| n.parse().ok())
            })
            .collect())
    }

    /// All snapshots, oldest first. Unreadable snapshot objects are returned as errors.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        for id in self.snapshot_ids()? {
            out.push(self.load_snapshot(&id)?);
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Resolves `latest`, a full id or a unique id prefix.
    pub fn find_snapshot(&self, sel: &str) -> Result<Snapshot> {
        if sel == "latest" {
            return self
                .snapshots()?
                .pop()
                .ok_or_else(|| Error::Selection("the repository has no snapshots yet".into()));
        }
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
            [one] => self.load_snapshot(one),
            [] => Err(Error::Selection(format!("no snapshot matches {sel:?}"))),
            many => Err(Error::Selection(format!(
                "{sel:?} is ambiguous: it matches {} snapshots; give more digits",
                many.len()
            ))),
        }
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
        self.locks_lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(lock.lost_flag());
        Ok(lock)
    }

    /// Fails when a lock taken through this handle could not be refreshed: another
    /// process may then have taken it for stale, so nothing more may be committed.
    pub fn check_locks(&self) -> Result<()> {
        let lost = self.locks_lost.lock().unwrap_or_else(|p| p.into_inner());
        if lost
            .iter()
            .any(|l| l.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(Error::Refused(
                "the repository lock could not be refreshed; stopping before committing".into(),
            ));
        }
        Ok(())
    }

    /// Stores a snapshot object — the last write of a backup run.
    pub fn save_snapshot(&self, s: &Snapshot) -> Result<()> {
        self.check_locks()?;
        self.backend.put(&snapshot_path(&s.id), &s.seal(&self.key))
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        let private = self
            .private_index
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(dir) = private {
            // Close RocksDB before removing its files.
            drop(self.index.take());
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
