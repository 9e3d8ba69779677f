//! The server's part of what was written since the parent snapshot: after `follow`'s
//! slices end, up to this snapshot's read time (and across its listing), from the
//! server's change stream where it can answer, else from its oplog.

use mongodb::bson::{doc, Bson, RawDocument, RawDocumentBuf};

use super::{why, Scan, Stop};
use crate::error::Result;
use crate::mongo::client::hello;
use crate::mongo::export::{moment, MongoSource};
use crate::mongo::oplog::changes::Changes;
use crate::mongo::oplog::read::{oplog, Backward};
use crate::mongo::oplog::stream::{as_entry, Since};
use crate::snapshot::ClusterTime;

/// Entries after the read time the backward oplog read passes over for the listing window
/// before it leaves that window to the read-time check's own read.
const WINDOW_ENTRIES: usize = 100_000;

/// Change events the stream may return before it is left for the oplog read: the events
/// already in `follow`'s slices are passed over, and a busy server's would add up.
const STREAM_EVENTS: usize = 200_000;

/// Where the server's entries after `after` go: those up to `until` (this snapshot's read
/// time) into `changes`, and those of the listing window (also after `until`) into the
/// window's own record.
pub(super) struct Sink<'a> {
    pub after: ClusterTime,
    pub until: ClusterTime,
    /// `(from, to, seen, entries after until)` of the listing window (set by
    /// [`from_server`]).
    pub window: Option<(ClusterTime, ClusterTime, Changes, usize)>,
    pub changes: &'a mut Changes,
    pub scan: &'a mut Scan,
    pub all_touched: &'a dyn Fn(&Changes) -> bool,
}

impl Sink<'_> {
    /// Takes one entry (or change event) of time `t`, after `after`; `add` records it.
    fn take(
        &mut self,
        t: ClusterTime,
        bytes: u64,
        add: &dyn Fn(&mut Changes),
    ) -> std::result::Result<(), Stop> {
        if let Some((from, to, seen, later)) = self.window.as_mut() {
            if t > *from && t <= *to {
                add(seen);
            }
            if t > self.until {
                // Written after the read time: only the window wants it; past a bound
                // (a busy server), the window is left to the read-time check.
                *later += 1;
                if *later > WINDOW_ENTRIES {
                    self.window = None;
                }
                return Ok(());
            }
        }
        if t > self.until {
            return Ok(());
        }
        self.scan.spend(bytes)?;
        self.scan.from_server += 1;
        add(self.changes);
        if self.scan.from_server % 1024 == 0 && (self.all_touched)(self.changes) {
            return why("every collection was written");
        }
        Ok(())
    }
}

/// Reads what the server wrote in `(after, until]`, refused when its oplog no longer
/// reaches back to `after`. Nothing is read when the server's last write is not after
/// `after` (every entry up to `until`, this snapshot's read time, existed when `hello`
/// ran). Otherwise, when the parent snapshot recorded a change-stream `position`, the
/// stream resumed there answers ([`from_stream`]); failing that, the oplog itself: one
/// query reads it backwards and stops at the first entry at or before `after`: the oplog
/// is ordered by time (its record ids are the timestamps), so everything in between was
/// seen, and that entry proves nothing after it was dropped (an oplog loses its oldest
/// entries first). A server that answers oldest first ([`Backward`]) is read to the end of
/// that answer, whose first entry must then be at or before `after`.
///
/// When the listing window ([`moment::listing_window`]) lies after `after`, the read goes
/// on past `until` to the end of the oplog and returns the window's entries, so that a
/// snapshot taking every collection from its parent needs no second oplog read.
pub(super) fn from_server(
    source: &MongoSource,
    mut sink: Sink<'_>,
    position: Option<&RawDocument>,
) -> std::result::Result<Option<Changes>, Stop> {
    let after = sink.after;
    sink.window = match source
        .cluster_time
        .map(|at| moment::listing_window(at, source.listed))
    {
        Some((from, Some(to))) if after <= from => Some((from, to, Changes::default(), 0usize)),
        _ => None,
    };
    let last_write =
        crate::mongo::export::last_write(&hello(&source.client)?).map(ClusterTime::from);
    if last_write.is_some_and(|w| w <= after) {
        // Nothing was written after `after`: the window holds no entry either.
        return Ok(sink.window.map(|w| w.2));
    }
    if let Some(position) = position {
        if let Some(events) = from_stream(source, position, after)? {
            sink.scan.streamed = true;
            for (event, t) in events {
                if t > sink.until && sink.window.is_none() {
                    break;
                }
                let entry = as_entry(&event);
                sink.take(t, event.as_bytes().len() as u64, &|c| c.add(&entry))?;
            }
            return Ok(sink.window.map(|w| w.2));
        }
    }
    let filter = match sink.window {
        Some(_) => doc! {},
        None => doc! {"ts": {"$lte": Bson::Timestamp(sink.until.into())}},
    };
    let mut read = Backward::open(&oplog(&source.client), filter)?;
    // Newest first, the read stops at the first entry at or before `after`; oldest first
    // (a server that ignores the sort), that entry must come first, and the read goes on
    // to the end.
    let newest_first = read.newest_first();
    let mut reached = false;
    while let Some((entry, t)) = read.next_entry()? {
        if t <= after {
            reached = true;
            if newest_first {
                break;
            }
            continue;
        }
        if !newest_first && !reached {
            break;
        }
        sink.take(t, entry.as_bytes().len() as u64, &|c| c.add(&entry))?;
    }
    if !reached {
        return why(format!(
            "the server's oplog no longer reaches back to {after}"
        ));
    }
    Ok(sink.window.map(|w| w.2))
}

/// The change events after `after`, oldest first, up to the oplog's end, from the stream
/// resumed at the parent's `position` ([`Since`]); `None` when the stream cannot answer
/// (the oplog no longer holds that position, the server refused, it failed midway, or it
/// returned too much), so the oplog is read instead. Events are held until the stream has
/// answered in full, so a stream failing midway leaves no trace in what the oplog read
/// then finds.
fn from_stream(
    source: &MongoSource,
    position: &RawDocument,
    after: ClusterTime,
) -> Result<Option<Vec<(RawDocumentBuf, ClusterTime)>>> {
    if crate::failpoint::skip("mongodb-change-stream") {
        return Ok(None);
    }
    let Some(mut since) = Since::open(&source.client, position)? else {
        return Ok(None);
    };
    let mut events = Vec::new();
    let mut passed = 0usize;
    loop {
        match since.next_event() {
            Ok(Some((event, t))) => {
                // Already in `follow`'s slices, or the parent's own.
                if t <= after {
                    passed += 1;
                } else {
                    events.push((event, t));
                }
                if passed + events.len() > STREAM_EVENTS {
                    return Ok(None);
                }
            }
            Ok(None) => return Ok(Some(events)),
            Err(e) => {
                tracing::debug!("change stream left for the oplog: {e}");
                return Ok(None);
            }
        }
    }
}
