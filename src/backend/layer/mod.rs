//! Behaviours around a backend, as wrappers rather than flags: retries with backoff
//! ([`retry::Retry`]), byte-rate limits ([`pace::Pace`]), local copies of immutable objects
//! ([`cache::ObjectCache`]) and, for tests, injected faults ([`faults::Faults`]).
//!
//! A [`Layer`] sees every request on its way to the wrapped backend; [`Layered`] makes any
//! layer a [`Backend`], so layers stack in whatever order they are wrapped:
//! `Retry(Faults(Pace(ObjectBackend)))` retries injected faults and books each attempt's
//! bytes against the rate.

pub mod cache;
#[cfg(feature = "testing")]
pub mod faults;
pub mod pace;
pub mod retry;

use std::sync::Arc;

use super::{Backend, ObjectInfo};
use crate::error::Result;

/// One request a layer sees.
#[derive(Clone, Copy, Debug)]
pub enum Request<'a> {
    /// Reading a whole object.
    Get(&'a str),
    /// Reading part of an object.
    GetRange {
        /// The object.
        path: &'a str,
        /// Where the part starts.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// Writing an object of `len` bytes.
    Put {
        /// The object.
        path: &'a str,
        /// Its size.
        len: usize,
    },
    /// Listing objects under a prefix.
    List(&'a str),
    /// Removing an object.
    Delete(&'a str),
    /// Asking whether an object exists.
    Exists(&'a str),
    /// Housekeeping the backend does itself (permissions, reserve, leftovers).
    Maintenance,
}

/// A behaviour around requests. Both methods default to passing the request on.
pub trait Layer: Send + Sync {
    /// A request that is not a read; `call` sends it on (and may be called again).
    fn request<T>(&self, _req: &Request<'_>, call: &mut dyn FnMut() -> Result<T>) -> Result<T> {
        call()
    }

    /// A read (`Get`, `GetRange`); `call` reads from the wrapped backend.
    fn read(
        &self,
        req: &Request<'_>,
        call: &mut dyn FnMut() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        self.request(req, call)
    }
}

/// A backend with a layer around it.
pub struct Layered<L> {
    inner: Arc<dyn Backend>,
    layer: L,
}

impl<L: Layer> Layered<L> {
    /// `inner` with `layer` around it.
    pub fn new(inner: Arc<dyn Backend>, layer: L) -> Self {
        Self { inner, layer }
    }

    /// The layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }
}

impl<L: Layer> Backend for Layered<L> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn get(&self, path: &str) -> Result<Vec<u8>> {
        self.layer
            .read(&Request::Get(path), &mut || self.inner.get(path))
    }

    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let req = Request::GetRange { path, offset, len };
        self.layer
            .read(&req, &mut || self.inner.get_range(path, offset, len))
    }

    fn put(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let req = Request::Put {
            path,
            len: bytes.len(),
        };
        self.layer
            .request(&req, &mut || self.inner.put(path, bytes))
    }

    fn put_new(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        let req = Request::Put {
            path,
            len: bytes.len(),
        };
        self.layer
            .request(&req, &mut || self.inner.put_new(path, bytes))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.layer
            .request(&Request::List(prefix), &mut || self.inner.list(prefix))
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.layer
            .request(&Request::Delete(path), &mut || self.inner.delete(path))
    }

    fn exists(&self, path: &str) -> Result<bool> {
        self.layer
            .request(&Request::Exists(path), &mut || self.inner.exists(path))
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn parallel_puts(&self) -> usize {
        self.inner.parallel_puts()
    }

    fn parallel_gets(&self) -> usize {
        self.inner.parallel_gets()
    }

    fn top_level(&self) -> Result<Vec<String>> {
        self.layer
            .request(&Request::List(""), &mut || self.inner.top_level())
    }

    fn restrict_access(&self) -> Result<()> {
        self.layer
            .request(&Request::Maintenance, &mut || self.inner.restrict_access())
    }

    fn keep_reserve(&self) -> Result<()> {
        self.inner.keep_reserve()
    }

    fn release_reserve(&self) -> Result<bool> {
        self.inner.release_reserve()
    }

    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        self.layer.request(&Request::Maintenance, &mut || {
            self.inner.remove_leftovers(age)
        })
    }
}
