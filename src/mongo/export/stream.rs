//! A collection's documents as one byte stream (raw BSON back to back), read through a
//! cursor at the backup's read time; the metadata entry waits for its document count.

use std::io::{self, Read};

use mongodb::bson::RawDocumentBuf;
use mongodb::sync::{ClientSession, Cursor, SessionCursor};

pub(super) enum Docs {
    Plain(Cursor<RawDocumentBuf>),
    Session(SessionCursor<RawDocumentBuf>, Box<ClientSession>),
}

/// How a collection's stream ended: the metadata entry waits for its document count.
#[derive(Default)]
pub struct StreamEnd {
    state: std::sync::Mutex<Option<std::result::Result<i64, String>>>,
    cv: std::sync::Condvar,
}

impl StreamEnd {
    pub(super) fn finish(&self, r: std::result::Result<i64, String>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.is_none() {
            *s = Some(r);
        }
        self.cv.notify_all();
    }

    /// Blocks until the stream has ended; its document count or why it failed.
    pub(super) fn wait(&self) -> std::result::Result<i64, String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = s.as_ref() {
                return r.clone();
            }
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The raw BSON of a collection's documents, back to back, as a byte stream.
pub struct CollectionStream {
    pub(super) docs: Docs,
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) count: i64,
    pub(super) end: Option<std::sync::Arc<StreamEnd>>,
    /// Called once the last document was read.
    pub(super) ended: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for CollectionStream {
    fn drop(&mut self) {
        // Dropped before the end (an error, a stopped pipeline): release the waiter.
        if let Some(end) = &self.end {
            end.finish(Err("the collection could not be read to the end".into()));
        }
    }
}

impl Read for CollectionStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            let next = match &mut self.docs {
                Docs::Plain(c) => c.next(),
                Docs::Session(c, s) => c.next(s),
            };
            match next {
                None => {
                    if let Some(ended) = self.ended.take() {
                        ended();
                    }
                    if let Some(end) = self.end.take() {
                        end.finish(Ok(self.count));
                    }
                    return Ok(0);
                }
                Some(Err(e)) => {
                    return Err(io::Error::other(format!(
                        "MongoDB: {}",
                        crate::mongo::client::describe_error(&e)
                    )))
                }
                Some(Ok(d)) => {
                    self.buf = d.into_bytes();
                    self.pos = 0;
                    self.count += 1;
                    if self.count == 1 {
                        crate::failpoint::hit("mongodb-stream-started");
                    }
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
