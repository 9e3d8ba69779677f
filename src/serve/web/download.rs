//! Downloads from a snapshot: a file as its bytes, a directory (or all of it) as a tar
//! archive. The entry is resolved first (errors are a page); then the bytes flow from a
//! blocking thread through a bounded channel (8 pieces of 256 KiB), so a large file never
//! sits in memory and a slow client slows the reading, not the other way round.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page::url;
use super::snapshots::{nz, snapshot_path};
use super::Viewer;
use crate::ops::context::Ctx;
use crate::ops::dump::{self, DumpKind, DumpRequest};
use crate::ops::select::SnapshotRef;
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::Service;
use crate::tree::path::SnapPath;

/// A download's query (its `path` is read as bytes: [`snapshot_path`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DumpQuery {
    repository: Option<String>,
}

/// A file of a snapshot, as its bytes.
pub async fn file(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    axum::extract::Query(q): axum::extract::Query<DumpQuery>,
) -> Response {
    download(svc, v, id, snapshot_path(&uri), q, false).await
}

/// A directory of a snapshot (or all of it), as a tar archive.
pub async fn tar(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    axum::extract::Query(q): axum::extract::Query<DumpQuery>,
) -> Response {
    download(svc, v, id, snapshot_path(&uri), q, true).await
}

/// `Content-Disposition` for `name`: an ASCII fallback and the exact UTF-8 name.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        url(name).replace('/', "%2F")
    )
}

/// Streams a dump: the snapshot and entry are resolved first (errors are a page), then
/// the bytes flow from a blocking thread through a bounded channel, so a large file
/// never sits in memory. A read error mid-way aborts the response, so a browser never
/// keeps a truncated file as complete.
async fn download(
    svc: Arc<Service>,
    v: Viewer,
    id: String,
    path: SnapPath,
    q: DumpQuery,
    as_tar: bool,
) -> Response {
    let repo_name = nz(&q.repository).map(str::to_string);
    let resolved = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let (_, repo) = svc.repository(repo_name.as_deref())?;
        let req = DumpRequest {
            snapshot: SnapshotRef::id(id),
            path,
            tar: as_tar,
        };
        let (snap, node, kind) = dump::resolve(&repo, &req)?;
        Ok((repo, req, snap, node, kind))
    })
    .await;
    let (repo, req, snap, node, kind) = match resolved {
        Ok(Ok(r)) => r,
        Ok(Err(p)) => return v.fail(&p),
        Err(_) => return v.fail(&Problem::invalid("internal error (see the service log)")),
    };
    // A header holds text: a name that is not UTF-8 is saved with U+FFFD in it.
    let base = String::from_utf8_lossy(req.path.file_name()).into_owned();
    let name = match kind {
        DumpKind::File => base,
        DumpKind::Tar if base.is_empty() => format!("snapshot-{}.tar", snap.id.short()),
        DumpKind::Tar => format!("{base}.tar"),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let size = (kind == DumpKind::File).then(|| node.as_ref().map_or(0, |n| n.size));
    tokio::task::spawn_blocking(move || {
        let mut w = ChanWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let r = dump::write(
            &repo,
            &snap,
            node.as_ref(),
            &req.path,
            kind,
            &Ctx::default(),
            &mut w,
        )
        .and_then(|_| w.flush_buf().map_err(|e| crate::Error::io("sending", e)));
        if let Err(e) = r {
            tracing::warn!("download of {} from {}: {e}", req.path, snap.id.short());
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    let ctype = if kind == DumpKind::Tar {
        "application/x-tar"
    } else {
        "application/octet-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(n) = size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    (StatusCode::OK, r).into_response()
}

const CHUNK: usize = 256 << 10;

/// A `Write` that sends 256 KiB pieces to the response body, waiting while the client
/// is slower than the repository (the channel is bounded).
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChanWriter {
    fn flush_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_safe_in_a_header() {
        let d = disposition("rep\"ort é.pdf");
        assert!(
            d.starts_with("attachment; filename=\"rep_ort__.pdf\""),
            "{d}"
        );
        assert!(d.contains("filename*=UTF-8''rep%22ort%20%C3%A9.pdf"), "{d}");
        assert!(HeaderValue::from_str(&d).is_ok());
    }
}
