//! `repo`: a content-addressed, deduplicating, encrypted backup repository.
//!
//! ```text
//! snapshot  source → walk (ordered) → chunk (FastCDC) → hash (keyed BLAKE3)
//!           → index has it? yes: reuse id | no: compress (zstd) → encrypt (ChaCha20-Poly1305)
//!           → pack → backend.put → index segment → local index
//!           → per-file chunk lists → trees → snapshot object (written last)
//! restore   snapshot → trees → index → range read → decrypt → decompress → re-hash → target
//! check     packs ↔ index segments ↔ trees reachable from snapshots [+ every blob read]
//! ```
//! Dependencies point one way: `cli` → `ops` → `repository`/`packer` → `pack`/`index`/
//! `backend`/`source`/`tree` → `chunk`/`hash`/`compress`/`crypto`/`id`/`error`.
//! The byte formats are specified in `format-spec/`; ARCHITECTURE.md maps the code.

pub mod backend;
pub mod blob;
pub mod chunk;
pub mod compress;
pub mod config;
pub mod copy_map;
pub mod crypto;
pub mod dirfd;
pub mod error;
pub mod failpoint;
pub mod glob;
pub mod hash;
pub mod id;
pub mod index;
pub mod journal;
pub mod key;
pub mod lock;
pub mod mongo;
#[cfg(feature = "mount")]
pub mod mount;
#[cfg(feature = "local-index")]
pub mod ops;
pub mod pack;
#[cfg(feature = "local-index")]
pub mod packer;
pub mod plan;
pub mod progress;
#[cfg(feature = "local-index")]
pub mod repository;
pub mod retention;
pub mod secret;
pub mod selection;
#[cfg(feature = "local-index")]
pub mod serve;
pub mod settings;
pub mod snapshot;
pub mod source;
pub mod subset;
pub mod sysinfo;
pub mod timespec;
pub mod tree;
pub mod unit;
#[cfg(feature = "local-index")]
pub mod writer;

pub use error::{Error, ErrorKind, Result};
