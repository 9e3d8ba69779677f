//! A repository held in memory: for benchmarks that measure the pipeline without a disk,
//! and for tests. Everything is lost when the process ends.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{Backend, ObjectInfo};
use crate::error::{Error, Result};

/// Objects in a sorted map behind a lock; `put` replaces whole objects, so it is atomic.
#[derive(Default)]
pub struct MemoryBackend {
    objects: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        "memory".into()
    }

    fn get(&self, path: &str) -> Result<Vec<u8>> {
        self.read()
            .get(path)
            .cloned()
            .ok_or_else(|| Error::Missing(format!("{path} in memory")))
    }

    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let objects = self.read();
        let obj = objects
            .get(path)
            .ok_or_else(|| Error::Missing(format!("{path} in memory")))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        obj.get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| super::short_read(path, offset, len, obj.len().saturating_sub(start)))
    }

    fn put(&self, path: &str, bytes: &[u8]) -> Result<()> {
        super::check_object_path(path)?;
        self.objects
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_string(), bytes.to_vec());
        Ok(())
    }

    fn put_new(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        super::check_object_path(path)?;
        let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
        if objects.contains_key(path) {
            return Ok(false);
        }
        objects.insert(path.to_string(), bytes.to_vec());
        Ok(true)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .read()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectInfo {
                path: k.clone(),
                size: v.len() as u64,
                modified: None,
            })
            .collect())
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.objects
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        Ok(())
    }

    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.read().contains_key(path))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_conformance() {
        super::super::conformance::check(&super::MemoryBackend::new());
    }
}
