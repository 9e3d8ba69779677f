//! Typed 32-byte identifiers, so a `PackId` can never be passed where a `ChunkId` is meant.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Length in bytes of every identifier.
pub const ID_LEN: usize = 32;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }
            /// Full lowercase hex form, as used in object names.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hex digits, for display.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            /// Reads an id from a byte slice of exactly 32 bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; ID_LEN]>::try_from(b).ok().map(Self)
            }
            /// A fresh random id.
            pub fn random() -> Self {
                Self(rand::random())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                let mut out = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut out).map_err(|_| {
                    Error::Invalid(format!(
                        concat!("not a valid ", stringify!($name), ": {:?}"),
                        s
                    ))
                })?;
                Ok(Self(out))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// Keyed BLAKE3 of a data chunk's plaintext.
    ChunkId
);
typed_id!(
    /// Keyed BLAKE3 of a tree blob's canonical encoding.
    TreeId
);
typed_id!(
    /// Any blob in a pack (data chunk or tree), as listed in trailers and the index.
    BlobId
);
typed_id!(
    /// Unkeyed BLAKE3 of a pack file's complete bytes.
    PackId
);
typed_id!(
    /// Unkeyed BLAKE3 of an index segment file's complete bytes.
    SegmentId
);
typed_id!(
    /// Random identifier of a snapshot.
    SnapshotId
);
typed_id!(
    /// Random identifier of an oplog slice.
    SliceId
);
typed_id!(
    /// Random identifier of a key file.
    KeyId
);
typed_id!(
    /// Random identifier of a lock object.
    LockId
);
typed_id!(
    /// Random identifier of a repository, chosen at `init`.
    RepoId
);
typed_id!(
    /// Random identifier of a record of packs marked for deletion.
    PendingId
);

impl From<ChunkId> for BlobId {
    fn from(c: ChunkId) -> Self {
        BlobId(c.0)
    }
}

impl From<TreeId> for BlobId {
    fn from(t: TreeId) -> Self {
        BlobId(t.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = PackId::random();
        let parsed: PackId = id.to_hex().parse().unwrap();
        assert_eq!(id, parsed);
        assert!("zz".parse::<PackId>().is_err());
        assert_eq!(id.short().len(), 8);
    }
}
