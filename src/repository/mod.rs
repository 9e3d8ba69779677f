//! An open repository: backend + master key + config, with the local index opened lazily.
//!
//! Write order (the crash-safety invariant): packs → index segments → snapshot object.
//! Anything a snapshot references was durable before the snapshot was written.

mod locks;
mod read;
mod snapshots;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::backend::layer::cache::ObjectCache;
use crate::backend::layer::{Layered, Request};
use crate::backend::Backend;
use crate::blob::{self, BlobKind};
use crate::config::{RepoConfig, CONFIG_PATH};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::hash::IdHasher;
use crate::id::{BlobId, KeyId, SnapshotId, TreeId};
use crate::index::{self, BlobLocation, RocksIndex, SyncReport};
use crate::key::{KdfParams, KeyFile};
use crate::pack::pack_path;
use crate::snapshot::{snapshot_path, Snapshot};
use crate::tree::{self, Tree};

/// An open, authenticated repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    config: RepoConfig,
    /// The `config` object as opened: what [`Repository::check_same_repository`] compares
    /// with the one at the location now.
    config_sealed: Vec<u8>,
    hasher: IdHasher,
    cache_dir: PathBuf,
    /// The local index once opened; replaced as a whole when it is rebuilt, while
    /// readers holding the old one finish with it.
    index: RwLock<Option<Arc<RocksIndex>>>,
    index_init: Mutex<()>,
    key_id: KeyId,
    /// The locks taken through this handle, checked before committing.
    locks: Mutex<Vec<crate::lock::LockWatch>>,
    /// The backend for reads of immutable objects (snapshots, slices, trees): through a
    /// local cache for remote repositories, straight through otherwise.
    immutable: Layered<ObjectCache>,
    /// Whether [`Repository::heal_index`] already rebuilt the index in this process.
    healed: AtomicBool,
    /// When a missing blob last made the index catch up with other writers' segments.
    caught_up: Mutex<Option<std::time::Instant>>,
    /// Damaged snapshot objects seen (and warned about) so far.
    damaged: Mutex<Vec<(SnapshotId, String)>>,
    /// Blobs of packs no segment lists, found when the index lacked one (reads only).
    unlisted: std::sync::OnceLock<HashMap<(BlobKind, BlobId), BlobLocation>>,
    /// How long [`Repository::lock_for`] waits for a conflicting lock.
    lock_wait: std::time::Duration,
}

/// Unwraps the master key with the first key file `password` opens. Key files are tried
/// cheapest first; one that is damaged or asks for absurd KDF costs is skipped (and named
/// if no key opens), so it can neither lock others out nor make every open slow.
fn open_any_key(
    backend: &dyn Backend,
    password: &[u8],
    config: &[u8],
) -> Result<(KeyId, MasterKey, RepoConfig)> {
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
    // A key the password opens but whose master secret does not open the config belongs
    // to no repository here (an `init` that lost a race and was stopped before removing
    // it): the next key is tried.
    let mut foreign = None;
    for (id, kf) in &candidates {
        match kf.unwrap_master(password) {
            Ok(Some(m)) => match RepoConfig::open(&m, config) {
                Ok(cfg) => {
                    for d in &damaged {
                        tracing::warn!("{d} (skipped; remove it with `repo key remove`)");
                    }
                    return Ok((*id, m, cfg));
                }
                Err(e) => {
                    damaged.push(format!("key {}: does not open the config", id.short()));
                    foreign.get_or_insert(e);
                }
            },
            Ok(None) => {}
            Err(e) => damaged.push(format!("key {}: {e}", id.short())),
        }
    }
    if let Some(e) = foreign {
        return Err(e);
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
        if foreign
            .iter()
            .any(|n| n.trim_start_matches('/') == CONFIG_PATH)
        {
            // Created since the check above: another init won a race.
            return Err(Error::AlreadyExists(backend.location()));
        }
        if !foreign.is_empty() {
            let shown: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
            return Err(Error::Refused(format!(
                "{} is not empty and is not a repository (it holds {}{}); choose an empty or new location",
                backend.location(),
                shown.join(", "),
                if foreign.len() > 5 { ", …" } else { "" }
            )));
        }
        // Key files of interrupted inits are removed once this one has created the config,
        // never before: another init may be running here at the same moment.
        let leftovers = backend.list("keys/")?;
        let master = MasterKey::generate();
        let kf = KeyFile::wrap(&master, password, kdf)?;
        let key = key_path(&KeyId::random());
        backend.put(&key, &kf.encode())?;
        let sealed = config.seal(&master);
        // Exactly one of several inits racing here creates the config; the others remove
        // their key and fail. The config is read back rather than trusting the answer: a
        // retried request whose first attempt created it answers "exists". (A read that
        // fails leaves the key: an unused key is harmless, a repository without one lost.)
        backend.put_new(CONFIG_PATH, &sealed)?;
        if backend.get(CONFIG_PATH)? != sealed {
            backend.delete(&key)?;
            return Err(Error::AlreadyExists(backend.location()));
        }
        for old in leftovers {
            backend.delete(&old.path)?;
        }
        backend.restrict_access()?;
        backend.keep_reserve()?;
        Ok(config)
    }

    /// Opens a repository with a password; the local cache lives under `cache_root/<repo id>`.
    pub fn open(backend: Arc<dyn Backend>, password: &[u8], cache_root: &Path) -> Result<Self> {
        // One read, no existence check first: on object stores each is a request.
        let config_sealed = match backend.get(CONFIG_PATH) {
            Err(Error::Missing(_)) => return Err(Error::NoRepository(backend.location())),
            read => read?,
        };
        let (key_id, key, config) = open_any_key(backend.as_ref(), password, &config_sealed)?;
        let hasher = IdHasher::new(key.id_key());
        let cache_dir = cache_root.join(config.id.to_hex());
        let cache = ObjectCache::new(backend.is_remote().then(|| cache_dir.join("objects")));
        tracing::info!(
            "opened repository {} (format version {}, key {})",
            backend.location(),
            config.version,
            key_id.short()
        );
        Ok(Self {
            immutable: Layered::new(backend.clone(), cache),
            backend,
            key,
            config,
            config_sealed,
            hasher,
            cache_dir,
            index: RwLock::new(None),
            index_init: Mutex::new(()),
            key_id,
            locks: Mutex::new(Vec::new()),
            healed: AtomicBool::new(false),
            caught_up: Mutex::new(None),
            damaged: Mutex::new(Vec::new()),
            unlisted: std::sync::OnceLock::new(),
            lock_wait: std::time::Duration::ZERO,
        })
    }

    /// The `config` object as this handle opened it (sealed).
    pub fn sealed_config(&self) -> &[u8] {
        &self.config_sealed
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

    /// Brings the local index, if it is open, up to date with segments other writers
    /// added since it was opened: a long-running service calls this before each job, as
    /// a fresh open would. When a segment it had merged is gone, a prune (perhaps on
    /// another host) deleted packs it may still list: it is replaced by one built from the
    /// repository, as a fresh open would rebuild it, so that no backup takes a deleted blob
    /// as stored.
    pub fn refresh_index(&self) -> Result<()> {
        if let Some(i) = self.current_index() {
            let _guard = self.index_init.lock().unwrap_or_else(|p| p.into_inner());
            let (report, stale) = index::sync(&i, self.backend(), &self.key)?;
            if stale {
                tracing::info!(
                    "the repository was pruned since its local index was opened; rebuilding the index"
                );
                // Marked first: the next open of the shared one rebuilds it.
                i.set_flag(index::DEGRADED, true)?;
                return self.replace_index();
            }
            tracing::debug!(
                "local index refreshed: {} segments merged, {} packs read from their trailers",
                report.segments_merged,
                report.packs_from_trailers
            );
            warn_damaged(&report);
        }
        Ok(())
    }

    fn current_index(&self) -> Option<Arc<RocksIndex>> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// An index only this process uses (the shared one was busy, or was found wrong while
    /// in use), built from the repository in a fresh directory that goes with it.
    fn private_index(&self) -> Result<RocksIndex> {
        let dir = self.cache_dir.join(format!(
            "index-private-{}-{}",
            std::process::id(),
            hex::encode(rand::random::<[u8; 4]>())
        ));
        let (idx, report) = index::rebuild(&dir, self.backend(), &self.key)?;
        warn_damaged(&report);
        Ok(idx.remove_when_dropped())
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
                return self.private_index();
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
            Err(e @ (Error::Storage { .. } | Error::Io { .. })) => return Err(e),
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
            let adopted = index::adopt_unlisted(
                &idx,
                self.backend(),
                &self.key,
                self.config().structure_version(),
            )?;
            idx.set_flag(index::DEGRADED, false)?;
            report.packs_from_trailers = adopted.packs_from_trailers;
            report.damaged_segments.extend(adopted.damaged_segments);
        }
        *self.index.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(idx));
        Ok(report)
    }

    /// Merges segments other writers added since the index was synced, when it was not
    /// done in the last second; whether it was done. A blob a concurrent writer (`follow`
    /// sealing a slice, another host's snapshot) stored after this process opened the
    /// index is found this way, without a rebuild.
    pub fn catch_up_index(&self) -> Result<bool> {
        {
            let mut last = self.caught_up.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1)) {
                return Ok(false);
            }
            *last = Some(std::time::Instant::now());
        }
        self.refresh_index()?;
        Ok(true)
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
        self.replace_index()?;
        Ok(true)
    }

    /// Replaces the local index (the caller holds `index_init`) with one built from the
    /// repository for this process: jobs still using the old one (they hold it) finish
    /// with it, later ones get the new one; a private one goes when the last lets go.
    fn replace_index(&self) -> Result<()> {
        let idx = self.private_index()?;
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(idx));
        Ok(())
    }

    /// Total bytes of the repository's objects (what it occupies on its backend).
    pub fn total_size(&self) -> Result<u64> {
        let mut n = 0;
        for prefix in [
            "packs/",
            "index/",
            "snapshots/",
            "oplog/",
            "log/",
            "keys/",
            "locks/",
            "pending/",
        ] {
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
}

/// "data" or "tree".
pub fn kind_name(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::Data => "data",
        BlobKind::Tree => "tree",
    }
}

#[cfg(test)]
mod tests;
