//! `--read-data-subset`: which packs a check reads in full (here, outside `ops`, because
//! the config file names one too). A full `--read-data` reads
//! every byte of the repository, which on object storage costs time and egress; a subset
//! spreads that cost over several checks, as restic's option of the same name does.

use std::collections::HashSet;
use std::fmt;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::PackId;

/// Which packs to read.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DataSubset {
    /// This fraction of the packs (0 < f ≤ 1), chosen at random each time: repeated
    /// checks cover the whole repository in expectation.
    Fraction(f64),
    /// Group `n` of `of` (1-based): the packs whose id, read as a number, leaves `n - 1`
    /// divided by `of`. `1/of` … `of/of` together read every pack exactly once.
    Group { n: u32, of: u32 },
    /// Packs chosen at random until this many bytes are read.
    Bytes(u64),
}

impl DataSubset {
    /// Reads "10%", "2/5" or a size such as "500MiB".
    pub fn parse(text: &str) -> Result<DataSubset> {
        let s = text.trim();
        let bad = |why: &str| {
            Error::Invalid(format!(
                "read-data-subset {s:?}: {why} (use a percentage like 10%, a group like 2/5, or a size like 500MiB)"
            ))
        };
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad("not a number"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad("must be more than 0% and at most 100%"));
            }
            return Ok(DataSubset::Fraction(v / 100.0));
        }
        if let Some((n, of)) = s.split_once('/') {
            let n: u32 = n.trim().parse().map_err(|_| bad("not a group number"))?;
            let of: u32 = of.trim().parse().map_err(|_| bad("not a group count"))?;
            if of == 0 || n == 0 || n > of {
                return Err(bad("the group must be between 1 and the count"));
            }
            return Ok(DataSubset::Group { n, of });
        }
        match crate::timespec::parse_size(s) {
            Ok(0) => Err(bad("must be more than zero bytes")),
            Ok(b) => Ok(DataSubset::Bytes(b)),
            Err(_) => Err(bad("not understood")),
        }
    }

    /// The packs to read out of `packs` (id, size).
    pub fn select(&self, packs: &[(PackId, u64)]) -> HashSet<PackId> {
        match *self {
            DataSubset::Group { n, of } => packs
                .iter()
                .filter(|(id, _)| group_of(id, of) == n - 1)
                .map(|(id, _)| *id)
                .collect(),
            DataSubset::Fraction(f) => {
                let want = ((packs.len() as f64) * f).ceil() as usize;
                let mut ids: Vec<PackId> = packs.iter().map(|(id, _)| *id).collect();
                ids.shuffle(&mut rand::thread_rng());
                ids.into_iter().take(want).collect()
            }
            DataSubset::Bytes(limit) => {
                let mut shuffled = packs.to_vec();
                shuffled.shuffle(&mut rand::thread_rng());
                let mut total = 0u64;
                let mut out = HashSet::new();
                for (id, size) in shuffled {
                    if total >= limit {
                        break;
                    }
                    total += size;
                    out.insert(id);
                }
                out
            }
        }
    }
}

/// The pack's group out of `of`: its id's first eight bytes, big-endian, modulo `of`.
fn group_of(id: &PackId, of: u32) -> u32 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&id.0[..8]);
    (u64::from_be_bytes(first) % u64::from(of)) as u32
}

impl fmt::Display for DataSubset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSubset::Fraction(v) => {
                // 7% is 0.07, and 0.07 × 100 is 7.000000000000001 in binary.
                let p = format!("{:.6}", v * 100.0);
                write!(f, "{}%", p.trim_end_matches('0').trim_end_matches('.'))
            }
            DataSubset::Group { n, of } => write!(f, "{n}/{of}"),
            DataSubset::Bytes(b) => {
                let units = [
                    (1u64 << 40, "TiB"),
                    (1 << 30, "GiB"),
                    (1 << 20, "MiB"),
                    (1 << 10, "KiB"),
                ];
                match units.iter().find(|(u, _)| b % u == 0) {
                    Some((u, name)) => write!(f, "{}{name}", b / u),
                    None => write!(f, "{b}B"),
                }
            }
        }
    }
}

impl TryFrom<String> for DataSubset {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        DataSubset::parse(&s)
    }
}

impl From<DataSubset> for String {
    fn from(s: DataSubset) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs(n: usize) -> Vec<(PackId, u64)> {
        (0..n)
            .map(|i| (PackId(*blake3::hash(&i.to_le_bytes()).as_bytes()), 100))
            .collect()
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(DataSubset::parse("10%").unwrap(), DataSubset::Fraction(0.1));
        assert_eq!(
            DataSubset::parse(" 2/5 ").unwrap(),
            DataSubset::Group { n: 2, of: 5 }
        );
        assert_eq!(DataSubset::parse("1KiB").unwrap(), DataSubset::Bytes(1024));
        for bad in [
            "0%", "101%", "x%", "0/3", "4/3", "1/0", "a/b", "0", "lots", "",
        ] {
            assert!(DataSubset::parse(bad).is_err(), "{bad:?} accepted");
        }
        for text in ["2/5", "12.5%", "7%", "5GiB", "1000B"] {
            let s = DataSubset::parse(text).unwrap();
            assert_eq!(s.to_string(), text);
            assert_eq!(DataSubset::parse(&s.to_string()).unwrap(), s);
        }
    }

    #[test]
    fn groups_partition_the_packs() {
        let all = packs(200);
        let mut seen = HashSet::new();
        for n in 1..=4 {
            let g = DataSubset::Group { n, of: 4 }.select(&all);
            assert!(!g.is_empty() && g.len() < 200);
            for id in g {
                assert!(seen.insert(id), "a pack in two groups");
            }
        }
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn fractions_and_sizes_take_what_they_say() {
        let all = packs(10);
        assert_eq!(DataSubset::Fraction(0.25).select(&all).len(), 3);
        assert_eq!(DataSubset::Fraction(1.0).select(&all).len(), 10);
        assert_eq!(DataSubset::Bytes(250).select(&all).len(), 3);
        assert_eq!(DataSubset::Bytes(1).select(&all).len(), 1);
    }
}
