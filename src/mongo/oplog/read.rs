//! Reading a server's oplog newest first, checked.
//!
//! A read that walks the oplog backwards and stops at the first entry at or before a time
//! `from` concludes that nothing after `from` is missing from what it saw. That holds only
//! if the server really returned the oplog newest first: a server that ignores
//! `sort({$natural: -1})` on the oplog (secantusd-rs, the Rust build of SecantusDB, does)
//! returns its oldest entry first, and the read would stop there having seen nothing. So
//! [`Backward`] learns the order the server gives from the first two entries and holds
//! every later entry to it; a caller reads an oldest-first answer to its end instead of
//! stopping (the same query, not a second one: on SecantusDB each costs a scan of the
//! whole oplog).

use std::collections::VecDeque;

use mongodb::bson::{doc, RawDocumentBuf};
use mongodb::sync::{Collection, Cursor};

use super::changes::entry_time;
use crate::error::{Error, Result};
use crate::mongo::client::db_err;
use crate::snapshot::ClusterTime;

/// The server's `local.oplog.rs`.
pub fn oplog(client: &mongodb::sync::Client) -> Collection<RawDocumentBuf> {
    client.database("local").collection("oplog.rs")
}

/// A read of the oplog's entries matching a filter, asked newest first, in the order the
/// server gives, checked.
pub struct Backward<I = Entries> {
    entries: I,
    /// The first entries, read to learn the order.
    ahead: VecDeque<(RawDocumentBuf, ClusterTime)>,
    newest_first: bool,
    prev: Option<ClusterTime>,
}

/// A server's answer to a find on its oplog.
pub type Entries = std::iter::Map<
    Cursor<RawDocumentBuf>,
    fn(mongodb::error::Result<RawDocumentBuf>) -> Result<RawDocumentBuf>,
>;

impl Backward {
    pub fn open(
        oplog: &Collection<RawDocumentBuf>,
        filter: mongodb::bson::Document,
    ) -> Result<Self> {
        let cursor = oplog
            .find(filter)
            .sort(doc! {"$natural": -1})
            .batch_size(1_000)
            .run()
            .map_err(|e| db_err("reading the oplog", e))?;
        let entries: Entries = cursor.map(|e| e.map_err(|e| db_err("reading the oplog", e)));
        Backward::over(entries)
    }
}

impl<I: Iterator<Item = Result<RawDocumentBuf>>> Backward<I> {
    fn over(mut entries: I) -> Result<Self> {
        // Up to the first entry whose time differs from the first one's: the entries of a
        // transaction share one time on SecantusDB.
        let mut ahead: VecDeque<(RawDocumentBuf, ClusterTime)> = VecDeque::new();
        while let Some(e) = pull(&mut entries)? {
            let differs = ahead.front().is_some_and(|(_, t0)| *t0 != e.1);
            ahead.push_back(e);
            if differs {
                break;
            }
        }
        // Entries all of one time, or none, have no order; they read the same both ways.
        let newest_first = match (ahead.front(), ahead.back()) {
            (Some((_, a)), Some((_, b))) => a >= b,
            _ => true,
        };
        Ok(Backward {
            entries,
            ahead,
            newest_first,
            prev: None,
        })
    }

    /// Whether the server gives the entries newest first, as asked. Otherwise they come
    /// oldest first: nothing is known of what is newer than an entry until the end.
    pub fn newest_first(&self) -> bool {
        self.newest_first
    }

    /// The next entry with its time; an entry out of the order the first two times showed is
    /// an error (no conclusion can be drawn from such an answer).
    pub fn next_entry(&mut self) -> Result<Option<(RawDocumentBuf, ClusterTime)>> {
        let next = match self.ahead.pop_front() {
            Some(e) => Some(e),
            None => pull(&mut self.entries)?,
        };
        if let (Some((_, t)), Some(p)) = (&next, self.prev) {
            // Equal times are in order: a transaction's entries share one on SecantusDB.
            let in_order = if self.newest_first { *t <= p } else { *t >= p };
            if !in_order {
                // Not `Source`: a server that cannot be read is trusted with a note, but
                // one that answers out of order has been read and proves nothing.
                return Err(Error::Refused(format!(
                    "MongoDB: the server returned its oplog out of time order ({p}, then \
                     {t}); what was read cannot be checked against it, so nothing is saved"
                )));
            }
        }
        if let Some((_, t)) = &next {
            self.prev = Some(*t);
        }
        Ok(next)
    }
}

fn pull(
    entries: &mut impl Iterator<Item = Result<RawDocumentBuf>>,
) -> Result<Option<(RawDocumentBuf, ClusterTime)>> {
    let Some(entry) = entries.next() else {
        return Ok(None);
    };
    let entry = entry?;
    let t = entry_time(&entry).ok_or_else(|| Error::corrupt("oplog entry", "no ts"))?;
    Ok(Some((entry, t)))
}

/// Whether the oplog still holds everything after `from`: its oldest entry is at or before
/// `from` (an oplog loses its oldest entries first). An empty oplog lost nothing: a capped
/// oplog always keeps its newest entries.
pub fn reaches_back(oplog: &Collection<RawDocumentBuf>, from: ClusterTime) -> Result<bool> {
    let oldest = oplog
        .find_one(doc! {})
        .sort(doc! {"$natural": 1})
        .run()
        .map_err(|e| db_err("reading the oplog", e))?;
    Ok(match oldest {
        None => true,
        Some(e) => entry_time(&e).is_some_and(|t| t <= from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{rawdoc, Timestamp};

    fn read(times: &[u32]) -> Backward<std::vec::IntoIter<Result<RawDocumentBuf>>> {
        let entries: Vec<Result<RawDocumentBuf>> = times
            .iter()
            .map(|&t| Ok(rawdoc! {"ts": Timestamp { time: t, increment: 1 }, "op": "n"}))
            .collect();
        Backward::over(entries.into_iter()).unwrap()
    }

    fn all(r: &mut Backward<std::vec::IntoIter<Result<RawDocumentBuf>>>) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        while let Some((_, t)) = r.next_entry()? {
            out.push(t.t);
        }
        Ok(out)
    }

    #[test]
    fn the_order_is_learned_from_the_first_two_times() {
        let mut r = read(&[9, 7, 5, 3]);
        assert!(r.newest_first());
        assert_eq!(all(&mut r).unwrap(), [9, 7, 5, 3]);
        // A server that ignores the sort: read to the end, oldest first.
        let mut r = read(&[3, 5, 7, 9]);
        assert!(!r.newest_first());
        assert_eq!(all(&mut r).unwrap(), [3, 5, 7, 9]);
        // A transaction's entries share a time.
        let mut r = read(&[5, 5, 5, 3, 3, 1]);
        assert!(r.newest_first());
        assert_eq!(all(&mut r).unwrap(), [5, 5, 5, 3, 3, 1]);
        let mut r = read(&[3, 3, 5, 5, 7]);
        assert!(!r.newest_first());
        assert_eq!(all(&mut r).unwrap(), [3, 3, 5, 5, 7]);
        for one in [&[][..], &[4][..], &[4, 4][..]] {
            let mut r = read(one);
            assert!(r.newest_first());
            assert_eq!(all(&mut r).unwrap(), one);
        }
    }

    #[test]
    fn an_entry_out_of_that_order_is_an_error() {
        for times in [
            &[9, 7, 8][..],
            &[3, 5, 4][..],
            &[4, 4, 6, 5][..],
            &[9, 9, 7, 8][..],
        ] {
            let mut r = read(times);
            let err = all(&mut r).unwrap_err().to_string();
            assert!(err.contains("out of time order"), "{times:?}: {err}");
        }
    }
}
