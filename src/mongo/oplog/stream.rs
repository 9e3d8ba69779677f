//! The server's change stream as a cheap view of its oplog since a known position.
//!
//! SecantusDB answers any `find` on `local.oplog.rs` with a scan of the whole oplog
//! (seconds at a million entries), but its change streams seek the oplog by position: a
//! snapshot that records where a fresh stream opened ([`position`]) lets the next one
//! see every write since in milliseconds ([`Since`]) — the common case of an unchanged
//! database among them.
//!
//! What makes the answer complete, not just quick:
//! - The position is taken before the snapshot's read time is fixed: every entry at or
//!   before it was visible then, so everything written after the read time lies after it.
//! - Resuming from it fails with ChangeStreamHistoryLost (286) once the oplog dropped an
//!   entry after it, as mongod's does: the stream never silently starts later.
//! - An empty batch does not mean the stream has seen everything: a server may return one
//!   while it is still scanning entries it does not show (noops, `admin`). So the oplog's
//!   end is taken first, as the position of a second, fresh stream, and the resumed
//!   stream is read until its own position has reached it. Positions are compared by the
//!   sequence number SecantusDB's tokens hold (`_data`: a hex BSON document `{s, t, …}`);
//!   a server whose tokens are not of that form (mongod's) gets no answer here, and the
//!   caller reads the oplog itself.
//! - What a cluster-wide stream leaves out — the `admin`, `config` and `local` databases
//!   and, on mongod, `system.*` collections — is for the caller to read otherwise.

use std::time::Duration;

use mongodb::bson::{doc, RawDocument, RawDocumentBuf};
use mongodb::change_stream::event::ResumeToken;
use mongodb::sync::{ChangeStream, Client};

use crate::error::{Error, Result};
use crate::mongo::client::db_err;
use crate::snapshot::ClusterTime;

pub use super::event::{as_entry, sequence};

/// Empty batches read before a stream that has not reached the oplog's end is given up.
const MAX_EMPTY_BATCHES: u32 = 2_000;

/// Where a fresh cluster-wide change stream opens now (after every write already
/// visible), as the server's resume token; `None` when the server gives none (no change
/// streams for this user, a standalone server, events already waiting at the open).
pub fn position(client: &Client) -> Option<RawDocumentBuf> {
    let stream = open(client, None).ok()?;
    let token = stream.resume_token()?;
    let raw = mongodb::bson::to_raw_document_buf(&token).ok()?;
    sequence(&raw).map(|_| raw)
}

/// The resumed stream's events after a position, each with its cluster time, up to the
/// oplog's end as it was when [`Since::open`] ran.
pub struct Since {
    stream: ChangeStream<RawDocumentBuf>,
    /// The oplog's end: a fresh stream's position at the open.
    end: i64,
    caught_up: bool,
}

impl Since {
    /// Resumes after `token`. `Ok(None)`: the stream cannot answer — the oplog no longer
    /// holds everything after it, the server refused the stream, or its positions cannot
    /// be compared.
    pub fn open(client: &Client, token: &RawDocument) -> Result<Option<Since>> {
        let Some(start) = sequence(token) else {
            return Ok(None);
        };
        let Some(end) = position(client).as_deref().and_then(sequence) else {
            return Ok(None);
        };
        let resume: ResumeToken = match mongodb::bson::from_slice(token.as_bytes()) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        let stream = match open(client, Some(resume)) {
            Ok(s) => s,
            // Most often ChangeStreamHistoryLost (286); whatever the reason, the oplog
            // read decides instead.
            Err(e) => {
                tracing::debug!("change stream not resumed: {e}");
                return Ok(None);
            }
        };
        Ok(Some(Since {
            stream,
            end,
            caught_up: start >= end,
        }))
    }

    /// The next event and its cluster time; `None` once the stream has passed the oplog's
    /// end as it was at the open.
    pub fn next_event(&mut self) -> Result<Option<(RawDocumentBuf, ClusterTime)>> {
        let mut empty = 0;
        loop {
            if !self.stream.is_alive() {
                return Err(Error::Source(
                    "MongoDB: the change stream ended before the oplog's end".into(),
                ));
            }
            if let Some(event) = self
                .stream
                .next_if_any()
                .map_err(|e| db_err("reading the change stream", e))?
            {
                let time = event
                    .get_timestamp("clusterTime")
                    .map(ClusterTime::from)
                    .map_err(|_| Error::corrupt("change event", "no clusterTime"))?;
                return Ok(Some((event, time)));
            }
            if self.caught_up || self.at_end() {
                self.caught_up = true;
                return Ok(None);
            }
            empty += 1;
            if empty > MAX_EMPTY_BATCHES {
                return Err(Error::Source(
                    "MongoDB: the change stream did not reach the oplog's end".into(),
                ));
            }
        }
    }

    fn at_end(&self) -> bool {
        let token = self.stream.resume_token();
        let raw = token.and_then(|t| mongodb::bson::to_raw_document_buf(&t).ok());
        raw.as_deref()
            .and_then(sequence)
            .is_some_and(|s| s >= self.end)
    }
}

/// A cluster-wide stream of every kind of change (DDL included), each event cut to what
/// says what it touched.
fn open(client: &Client, resume: Option<ResumeToken>) -> Result<ChangeStream<RawDocumentBuf>> {
    let project = doc! {"$project": {
        "operationType": 1, "clusterTime": 1, "ns": 1, "to": 1, "documentKey": 1,
    }};
    client
        .watch()
        .pipeline([project])
        .show_expanded_events(true)
        .max_await_time(Duration::from_millis(50))
        .batch_size(1_000)
        .resume_after(resume)
        .run()
        .map(|s| s.with_type::<RawDocumentBuf>())
        .map_err(|e| db_err("opening a change stream", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::rawdoc;

    #[test]
    fn a_stored_token_resumes_as_the_driver_gave_it() {
        let raw = rawdoc! {"_data": "2B00"};
        let resume: ResumeToken = mongodb::bson::from_slice(raw.as_bytes()).unwrap();
        assert_eq!(mongodb::bson::to_raw_document_buf(&resume).unwrap(), raw);
    }
}
