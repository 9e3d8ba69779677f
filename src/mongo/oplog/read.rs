//! Reading a server's oplog newest first, checked.
//!
//! A read that walks the oplog backwards and stops at the first entry at or before a time
//! `from` concludes that nothing after `from` is missing from what it saw. That holds only
//! if the server really returned the oplog newest first: a server that ignores
//! `sort({$natural: -1})` on the oplog (secantusd-rs, the Rust build of SecantusDB, does)
//! returns its oldest entry first, and the read would stop there having seen nothing. So
//! [`Backward`] checks the order it is given, and says when the server read forwards, for
//! the caller to read forwards itself.

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

/// What [`Backward::step`] found.
pub enum Next {
    /// An entry older than every one before it.
    Entry(RawDocumentBuf, ClusterTime),
    /// No more entries.
    End,
    /// An entry not older than the one before: the server does not read the oplog
    /// backwards. Nothing read so far can be trusted to be the newest entries.
    Forwards,
}

/// A read of the oplog's entries matching a filter, newest first, checked.
pub struct Backward<I = Entries> {
    entries: I,
    prev: Option<ClusterTime>,
    seen: usize,
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
        Ok(Backward::over(entries))
    }
}

impl<I: Iterator<Item = Result<RawDocumentBuf>>> Backward<I> {
    fn over(entries: I) -> Self {
        Backward {
            entries,
            prev: None,
            seen: 0,
        }
    }

    pub fn step(&mut self) -> Result<Next> {
        let Some(entry) = self.entries.next() else {
            return Ok(Next::End);
        };
        let entry = entry?;
        let t = entry_time(&entry).ok_or_else(|| Error::corrupt("oplog entry", "no ts"))?;
        // Oplog times are unique, so an equal time is out of order too.
        if self.prev.is_some_and(|p| t >= p) {
            return Ok(Next::Forwards);
        }
        self.prev = Some(t);
        self.seen += 1;
        Ok(Next::Entry(entry, t))
    }

    /// Called at the entry a read stops at: whether the server really read backwards up
    /// to it. Two entries in falling order already showed it; when the stop is the first
    /// entry, the one after it must be older (or absent: a one-entry oplog has no order).
    pub fn stop_is_sound(&mut self) -> Result<bool> {
        if self.seen >= 2 {
            return Ok(true);
        }
        Ok(!matches!(self.step()?, Next::Forwards))
    }
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
        Backward::over(entries.into_iter())
    }

    fn time(next: Next) -> Option<u32> {
        match next {
            Next::Entry(_, t) => Some(t.t),
            _ => None,
        }
    }

    #[test]
    fn newest_first_is_read_and_its_stop_is_sound() {
        let mut r = read(&[9, 7, 5, 3]);
        assert_eq!(time(r.step().unwrap()), Some(9));
        assert_eq!(time(r.step().unwrap()), Some(7));
        assert!(r.stop_is_sound().unwrap());
    }

    #[test]
    fn a_stop_at_the_first_entry_looks_at_the_next() {
        // Stopping at 3 when the server in fact returned its oldest entry first.
        let mut r = read(&[3, 5, 7, 9]);
        assert_eq!(time(r.step().unwrap()), Some(3));
        assert!(!r.stop_is_sound().unwrap());
        let mut r = read(&[3, 1]);
        assert_eq!(time(r.step().unwrap()), Some(3));
        assert!(r.stop_is_sound().unwrap());
        let mut r = read(&[3]);
        assert_eq!(time(r.step().unwrap()), Some(3));
        assert!(r.stop_is_sound().unwrap());
    }

    #[test]
    fn oldest_first_is_refused_at_the_second_entry() {
        let mut r = read(&[3, 5, 7]);
        assert_eq!(time(r.step().unwrap()), Some(3));
        assert!(matches!(r.step().unwrap(), Next::Forwards));
        // An equal time is no order either.
        let mut r = read(&[4, 4]);
        r.step().unwrap();
        assert!(matches!(r.step().unwrap(), Next::Forwards));
        let mut r = read(&[]);
        assert!(matches!(r.step().unwrap(), Next::End));
    }
}
