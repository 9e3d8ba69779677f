//! A stored file's bytes as a stream, for `dump` and its tar entries.

use std::io::Write;

use crate::blob::BlobKind;
use crate::error::{Error, Result};
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::tree::Node;

/// A file's content as a reader: its chunks, read one at a time as they are needed (a
/// file of any size costs one chunk of memory). A total that disagrees with the node's
/// size is an error, not a short or long file.
pub(super) struct Content<'a> {
    repo: &'a Repository,
    node: &'a Node,
    ctx: &'a Ctx,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes read so far.
    pub(super) total: u64,
}

impl<'a> Content<'a> {
    pub(super) fn new(repo: &'a Repository, node: &'a Node, ctx: &'a Ctx) -> Self {
        Content {
            repo,
            node,
            ctx,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            total: 0,
        }
    }

    fn fill(&mut self) -> Result<bool> {
        let Some(c) = self.node.content.get(self.next) else {
            if self.total != self.node.size {
                return Err(Error::corrupt(
                    format!("file of {} bytes", self.node.size),
                    format!("its chunks hold {} bytes", self.total),
                ));
            }
            return Ok(false);
        };
        self.ctx.check()?;
        self.buf = self.repo.read_blob(BlobKind::Data, &(*c).into())?;
        self.pos = 0;
        self.next += 1;
        self.total += self.buf.len() as u64;
        Ok(true)
    }
}

impl std::io::Read for Content<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The repository error inside an I/O error from [`Content`], or the I/O error itself.
pub(super) fn unwrap_io(e: std::io::Error, context: &str) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<Error>()) {
        if let Some(Ok(inner)) = e.into_inner().map(|b| b.downcast::<Error>()) {
            return *inner;
        }
        return Error::Internal("a dump read error lost its cause".into());
    }
    Error::io(context.to_string(), e)
}

/// Writes a file's chunks in order; returns the bytes written.
pub(super) fn content(repo: &Repository, n: &Node, ctx: &Ctx, out: &mut dyn Write) -> Result<u64> {
    std::io::copy(&mut Content::new(repo, n, ctx), out)
        .map_err(|e| unwrap_io(e, "writing the dump"))
}
