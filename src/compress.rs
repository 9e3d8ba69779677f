//! zstd compression with a raw fallback when compression does not pay.

use std::cell::RefCell;

use crate::error::{Error, Result};

/// Payload stored as is.
pub const RAW: u8 = 0;
/// Payload is one zstd frame.
pub const ZSTD: u8 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Bytes [`compress_into`] may append for `len` input bytes at `level`.
pub fn bound(len: usize, level: i32) -> usize {
    if level <= 0 {
        len
    } else {
        zstd::zstd_safe::compress_bound(len)
    }
}

/// Appends `data` to `out` compressed at `level` and returns the flag, or appends it raw
/// (flag [`RAW`]) when zstd would not make it smaller.
pub fn compress_into(data: &[u8], level: i32, out: &mut Vec<u8>) -> u8 {
    if level <= 0 || data.is_empty() {
        out.extend_from_slice(data);
        return RAW;
    }
    // Compressed straight into `out`; one reused context per thread.
    let start = out.len();
    out.resize(start + bound(data.len(), level), 0);
    let written = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
        }
        slot.as_mut()
            .and_then(|(_, c)| c.compress_to_buffer(data, &mut out[start..]).ok())
    });
    match written {
        Some(n) if n < data.len() => {
            out.truncate(start + n);
            ZSTD
        }
        _ => {
            out.truncate(start);
            out.extend_from_slice(data);
            RAW
        }
    }
}

/// Reverses [`compress_into`]; `raw_len` bounds the output so a hostile frame cannot
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
        let mut out = Vec::new();
        assert_eq!(compress_into(&text, 3, &mut out), ZSTD);
        assert!(out.len() < text.len());
        assert_eq!(decompress(ZSTD, &out, text.len(), "t").unwrap(), text);

        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut out = Vec::new();
        let flag = compress_into(&noise, 3, &mut out);
        assert_eq!(decompress(flag, &out, noise.len(), "t").unwrap(), noise);
        assert!(decompress(9, &out, noise.len(), "t").is_err());
        assert!(decompress(RAW, &out, noise.len() + 1, "t").is_err());
    }
}
