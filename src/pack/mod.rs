//! Pack files: where sealed blobs are grouped into immutable, self-describing files.
//!
//! Layout (format-spec/pack.md): `blob* || trailer envelope || trailer_len (u32 LE)`.
//! The trailer lists every blob, so the index can always be rebuilt from packs alone.

pub mod reader;
pub mod runs;
pub mod writer;

use crate::blob::BlobKind;
use crate::id::BlobId;

/// Magic bytes opening a decrypted trailer.
pub const TRAILER_MAGIC: &[u8; 4] = b"RPK1";
/// Trailer format version.
pub const TRAILER_VERSION: u8 = 1;
/// Encoded size of one trailer entry.
pub const ENTRY_LEN: usize = 1 + 32 + 8 + 4 + 4;

/// Where one blob sits inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// The blob's id.
    pub id: BlobId,
    /// Byte offset of the sealed blob from the start of the pack.
    pub offset: u64,
    /// Length of the sealed blob.
    pub length: u32,
    /// Length of the plaintext after decompression.
    pub raw_length: u32,
}

/// Object name of a pack: `packs/<first two hex digits>/<64 hex digits>`.
pub fn pack_path(id: &crate::id::PackId) -> String {
    let h = id.to_hex();
    format!("packs/{}/{}", &h[..2], h)
}
