//! Progress counters shared by pipeline stages. Stages only bump atomics; whoever observes
//! the run ([`crate::ops::context::Observer`]) reads them when it likes, so progress costs
//! the hot path nothing but a relaxed add.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use serde::Serialize;

/// Counters updated by a running operation.
#[derive(Default)]
pub struct Progress {
    /// Items (files, blobs…) done.
    pub items: AtomicU64,
    /// Bytes done.
    pub bytes: AtomicU64,
    /// Items expected (may grow while a scan is still running).
    pub total_items: AtomicU64,
    /// Bytes expected.
    pub total_bytes: AtomicU64,
    /// Set when the totals are final.
    pub totals_final: AtomicBool,
    /// What an item is ("files", "packs", "documents"); "items" until set.
    unit: OnceLock<&'static str>,
}

impl Progress {
    /// Sets the final totals (known before the work starts).
    pub fn set_totals(&self, items: u64, bytes: u64) {
        self.total_items.store(items, Relaxed);
        self.total_bytes.store(bytes, Relaxed);
        self.totals_final.store(true, Relaxed);
    }

    /// Names what the items are, for progress lines ("packs"). The first name given stays.
    pub fn set_unit(&self, unit: &'static str) {
        let _ = self.unit.set(unit);
    }

    /// What the items are.
    pub fn unit(&self) -> &'static str {
        self.unit.get().copied().unwrap_or("items")
    }

    /// Adds finished work.
    pub fn done(&self, items: u64, bytes: u64) {
        self.items.fetch_add(items, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counts {
    /// Items done.
    pub items: u64,
    /// Bytes done.
    pub bytes: u64,
    /// Items expected.
    pub total_items: u64,
    /// Bytes expected.
    pub total_bytes: u64,
    /// Whether the totals are final.
    pub totals_final: bool,
}

impl Progress {
    /// Reads every counter.
    pub fn counts(&self) -> Counts {
        Counts {
            items: self.items.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            total_items: self.total_items.load(Relaxed),
            total_bytes: self.total_bytes.load(Relaxed),
            totals_final: self.totals_final.load(Relaxed),
        }
    }
}
