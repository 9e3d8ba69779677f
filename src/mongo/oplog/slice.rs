//! Slice objects (`oplog/<id>`): small sealed JSON records naming the chunks that hold a
//! run of oplog entries (raw BSON documents back to back, exactly as the server sent them).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::{ChunkId, SliceId};
use crate::snapshot::ClusterTime;

/// Slice object format version.
pub const SLICE_VERSION: u32 = 1;

/// Oplog entries that were lost before they could be read (the oplog rolled over).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gap {
    /// The last time captured before the loss.
    pub from: ClusterTime,
    /// The oldest entry still in the oplog when reading resumed.
    pub to: ClusterTime,
}

/// One sealed run of oplog entries.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Slice {
    /// Format version.
    pub version: u32,
    /// Random id; also the object's name.
    pub id: SliceId,
    /// The server's identity (`replset:<name>:<id>`, `cluster:<id>`: what snapshots record
    /// as `mongodb.server`); slices written before that was recorded hold the connection
    /// string without credentials.
    pub source: String,
    /// Databases captured; empty: every database but admin, local and config.
    pub dbs: Vec<String>,
    /// Host that captured it.
    pub host: String,
    /// When it was sealed.
    pub created: DateTime<Utc>,
    /// Exclusive start of the covered oplog time.
    pub after: ClusterTime,
    /// Inclusive end of the covered oplog time.
    pub until: ClusterTime,
    /// The server's clock when the last read began: every entry whose wall clock is at
    /// or before it is in this slice or an earlier one, even past `until` when idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_wall: Option<DateTime<Utc>>,
    /// Timestamp of the first entry held (None: no entry in the range).
    pub first: Option<ClusterTime>,
    /// Timestamp of the last entry held.
    pub last: Option<ClusterTime>,
    /// Entries held.
    pub entries: u64,
    /// Bytes of the entries (raw BSON).
    pub bytes: u64,
    /// Chunks whose concatenation is the entries.
    pub chunks: Vec<ChunkId>,
    /// Entries lost just before `after` (reported when this slice was sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
}

/// Object name of a slice.
pub fn slice_path(id: &SliceId) -> String {
    format!("oplog/{}", id.to_hex())
}

impl Slice {
    /// Seals for storage.
    pub fn seal(&self, key: &MasterKey) -> Vec<u8> {
        key.seal(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Opens a stored slice and checks it is the one its name says.
    pub fn open(key: &MasterKey, bytes: &[u8], expected: &SliceId) -> Result<Self> {
        let what = format!("oplog slice {}", expected.short());
        let plain = key.open(bytes, &what)?;
        let s = Self::decode(&plain, &what)?;
        if s.id != *expected {
            return Err(Error::corrupt(
                what,
                "id inside does not match the object name",
            ));
        }
        Ok(s)
    }

    /// Decodes the plaintext JSON and checks the range is well-formed.
    pub fn decode(plain: &[u8], what: &str) -> Result<Self> {
        let s: Slice =
            serde_json::from_slice(plain).map_err(|e| Error::corrupt(what, e.to_string()))?;
        if s.version != SLICE_VERSION {
            return Err(Error::UnsupportedVersion {
                found: s.version,
                supported: SLICE_VERSION,
            });
        }
        let inside = |t: &Option<ClusterTime>| t.is_none_or(|t| s.after < t && t <= s.until);
        if s.until < s.after || !inside(&s.first) || !inside(&s.last) || s.first > s.last {
            return Err(Error::corrupt(
                what,
                "entry times outside the covered range",
            ));
        }
        Ok(s)
    }
}

/// Splits a slice's bytes into its raw BSON documents (each length-checked; the BSON
/// inside is validated by whoever reads the fields).
pub fn split_entries(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = match rest.get(..4) {
            Some(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => return Err(Error::corrupt("oplog slice", "truncated entry length")),
        };
        if len < 5 || len as usize > rest.len() || rest[len as usize - 1] != 0 {
            return Err(Error::corrupt("oplog slice", "bad entry length"));
        }
        let (doc, tail) = rest.split_at(len as usize);
        out.push(doc);
        rest = tail;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ct(t: u32, i: u32) -> ClusterTime {
        ClusterTime { t, i }
    }

    fn sample() -> Slice {
        Slice {
            version: SLICE_VERSION,
            id: SliceId::random(),
            source: "mongodb://h:27017".into(),
            dbs: vec!["app".into()],
            host: "h".into(),
            created: Utc::now(),
            after: ct(10, 1),
            until: ct(20, 0),
            until_wall: None,
            first: Some(ct(10, 2)),
            last: Some(ct(19, 4)),
            entries: 3,
            bytes: 100,
            chunks: vec![ChunkId([7; 32])],
            gap: None,
        }
    }

    #[test]
    fn round_trip_name_check_and_range_check() {
        let k = MasterKey::from_secret([3; 32]);
        let s = sample();
        let sealed = s.seal(&k);
        assert_eq!(Slice::open(&k, &sealed, &s.id).unwrap(), s);
        assert!(Slice::open(&k, &sealed, &SliceId::random()).is_err());
        let mut bad = sample();
        bad.first = Some(ct(10, 1)); // not after `after`
        assert!(Slice::decode(&serde_json::to_vec(&bad).unwrap(), "s").is_err());
    }

    #[test]
    fn entries_split_on_their_lengths() {
        let a = [5u8, 0, 0, 0, 0];
        let b = [6u8, 0, 0, 0, 9, 0];
        let joined: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        assert_eq!(split_entries(&joined).unwrap(), vec![&a[..], &b[..]]);
        assert!(split_entries(&joined[..7]).is_err());
        assert!(split_entries(&[4, 0, 0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Slice::decode(&bytes, "s");
            let _ = split_entries(&bytes);
        }
    }
}
