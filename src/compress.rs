//! zstd compression with a raw fallback when compression does not pay.

use std::cell::RefCell;

use crate::error::{Error, Result};

/// Payload stored as is.
pub const RAW: u8 = 0;
/// Payload is one zstd frame.
pub const ZSTD: u8 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    /// Where zstd writes, kept for the thread's life: a fresh buffer of the worst-case
    /// size per call (4.5 MiB for a unit) was a new mapping whose every page the kernel
    /// faulted in and cleared, and we zeroed again — 10% of a first backup's CPU.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The most scratch space a thread keeps between calls: the worst case of a full
/// compression unit.
const KEPT_SCRATCH: usize = crate::unit::UNIT_TARGET + crate::unit::SMALL_BLOB + (64 << 10);

/// Compresses `data` at `level` and hands `f` the flag and the payload, or `data` itself
/// with flag [`RAW`] when zstd would not make it smaller; callers size their buffer
/// exactly.
pub fn compress_with<R>(data: &[u8], level: i32, f: impl FnOnce(u8, &[u8]) -> R) -> R {
    if level <= 0 || data.is_empty() {
        return f(RAW, data);
    }
    // Compressed into the thread's scratch buffer, then copied: the copy is of the
    // compressed bytes only. One reused context per thread. The buffer keeps the size of
    // a full compression unit at most; a larger blob (a file chunk is up to 8 MiB) gets
    // one of its own, so each thread holds ≤ 4.6 MiB between calls.
    SCRATCH.with(|kept| {
        let need = zstd::zstd_safe::compress_bound(data.len());
        let mut own = Vec::new();
        let mut kept = kept.borrow_mut();
        let scratch = if need <= KEPT_SCRATCH {
            if kept.len() < need {
                kept.resize(need, 0);
            }
            &mut *kept
        } else {
            own.resize(need, 0);
            &mut own
        };
        let written = COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().map(|(l, _)| *l) != Some(level) {
                *slot = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
            }
            slot.as_mut()
                .and_then(|(_, c)| c.compress_to_buffer(data, &mut scratch[..need]).ok())
        });
        match written {
            Some(n) if n < data.len() => f(ZSTD, &scratch[..n]),
            _ => f(RAW, data),
        }
    })
}

/// Reverses [`compress_with`]; `raw_len` bounds the output so a hostile frame cannot
/// make us allocate without limit.
pub fn decompress(flag: u8, payload: &[u8], raw_len: usize, what: &str) -> Result<Vec<u8>> {
    let out = match flag {
        RAW => payload.to_vec(),
        ZSTD => DECOMPRESSOR
            .with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(zstd::bulk::Decompressor::new()?);
                }
                match slot.as_mut() {
                    Some(d) => d.decompress(payload, raw_len),
                    None => Err(std::io::Error::other("no zstd context")),
                }
            })
            .map_err(|e| Error::corrupt(what, format!("zstd: {e}")))?,
        other => {
            return Err(Error::corrupt(
                what,
                format!("unknown compression flag {other}"),
            ))
        }
    };
    if out.len() != raw_len {
        return Err(Error::corrupt(
            what,
            format!("decoded {} bytes, expected {raw_len}", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_raw_fallback() {
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabc".repeat(100);
        let (flag, out) = compress_with(&text, 3, |f, p| (f, p.to_vec()));
        assert_eq!(flag, ZSTD);
        assert!(out.len() < text.len());
        assert_eq!(decompress(ZSTD, &out, text.len(), "t").unwrap(), text);

        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (flag, out) = compress_with(&noise, 3, |f, p| (f, p.to_vec()));
        assert_eq!(decompress(flag, &out, noise.len(), "t").unwrap(), noise);
        assert!(decompress(9, &out, noise.len(), "t").is_err());
        assert!(decompress(RAW, &out, noise.len() + 1, "t").is_err());
    }
}
