//! Reading a file with holes without making the kernel fill them.
//!
//! A hole reads as zeros, but `read` makes the kernel allocate and zero page-cache pages
//! for it: a 5 GiB sparse disk image with 3 MiB of data cost 23 s to back up, most of it
//! zero-filling (and evicting the cache for nothing). [`SparseFile`] asks where the data
//! is (`SEEK_DATA`/`SEEK_HOLE`) and hands out zeros for the holes itself. The bytes are the
//! same as a plain read's; a file written while it is read is caught, as for any file, by
//! the snapshot comparing its status before and after.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use rustix::fs::SeekFrom;

/// Files shorter than this are read plainly: a hole is at least a block, and two `lseek`s
/// per small file would cost more than they save.
pub const SPARSE_MIN: u64 = 1 << 20;

/// A file read from the start, with its holes given as zeros without reading them.
pub struct SparseFile {
    file: File,
    /// Next offset to hand out.
    off: u64,
    /// `[off, hole_end)` is a hole.
    hole_end: u64,
    /// `[off, data_end)` is data (read with `pread`).
    data_end: u64,
}

impl SparseFile {
    /// Reads `file` from offset 0 (its own file offset is neither used nor moved).
    pub fn new(file: File) -> Self {
        Self {
            file,
            off: 0,
            hole_end: 0,
            data_end: 0,
        }
    }

    /// Finds what lies at `off`: data up to the next hole, or a hole up to the next data.
    /// A file system without hole support answers "data to the end", which is read plainly.
    fn probe(&mut self) -> std::io::Result<()> {
        match rustix::fs::seek(&self.file, SeekFrom::Data(self.off)) {
            Ok(d) if d > self.off => self.hole_end = d,
            Ok(_) => {
                self.data_end = rustix::fs::seek(&self.file, SeekFrom::Hole(self.off))
                    .ok()
                    .filter(|&h| h > self.off)
                    .unwrap_or(u64::MAX);
            }
            // No data at or after `off`: a hole up to the end, or `off` is the end.
            Err(rustix::io::Errno::NXIO) => {
                let size = self.file.metadata()?.len();
                if size > self.off {
                    self.hole_end = size;
                } else {
                    self.data_end = u64::MAX;
                }
            }
            Err(_) => self.data_end = u64::MAX,
        }
        Ok(())
    }
}

impl Read for SparseFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.off >= self.hole_end && self.off >= self.data_end {
            self.probe()?;
        }
        if self.off < self.hole_end {
            let n = usize::try_from(self.hole_end - self.off)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            buf[..n].fill(0);
            self.off += n as u64;
            return Ok(n);
        }
        let n = usize::try_from(self.data_end - self.off)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let got = self.file.read_at(&mut buf[..n], self.off)?;
        self.off += got as u64;
        if got == 0 {
            // The end, or the file shrank: ask again next time rather than loop on `pread`.
            self.data_end = self.off;
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn sparse(layout: &[(u64, &[u8])], size: u64) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("f"))
            .unwrap();
        f.set_len(size).unwrap();
        for (at, bytes) in layout {
            f.seek(std::io::SeekFrom::Start(*at)).unwrap();
            f.write_all(bytes).unwrap();
        }
        f.sync_all().unwrap();
        (dir, f)
    }

    fn both_ways(layout: &[(u64, &[u8])], size: u64, bufsize: usize) {
        let (_dir, f) = sparse(layout, size);
        let mut plain = Vec::new();
        let mut again = f.try_clone().unwrap();
        again.seek(std::io::SeekFrom::Start(0)).unwrap();
        again.read_to_end(&mut plain).unwrap();
        assert_eq!(plain.len() as u64, size);
        let mut got = Vec::new();
        let mut r = SparseFile::new(f);
        let mut buf = vec![0xaa; bufsize];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got.len(), plain.len());
        assert!(got == plain, "sparse read differs from a plain read");
    }

    #[test]
    fn holes_read_as_zeros_and_data_as_written() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 + 1).collect();
        let mib = 1u64 << 20;
        // Leading hole, data, inner hole, data across a block boundary, trailing hole.
        let layout: &[(u64, &[u8])] = &[
            (3 * mib, &data),
            (9 * mib + 1000, &data[..5000]),
            (9 * mib + 4090, b"xyz"),
        ];
        for bufsize in [1, 4096, 65_537, 8 << 20] {
            both_ways(layout, 16 * mib, bufsize);
        }
        // Dense, empty, and all hole.
        both_ways(&[(0, &data)], data.len() as u64, 65_536);
        both_ways(&[], 0, 4096);
        both_ways(&[], 5 * mib + 3, 1 << 20);
    }

    #[test]
    fn a_file_that_shrinks_while_read_ends_where_it_now_ends() {
        let (_dir, f) = sparse(&[(0, &[7u8; 10_000])], 4 << 20);
        let mut r = SparseFile::new(f.try_clone().unwrap());
        let mut buf = vec![0; 4096];
        assert_eq!(r.read(&mut buf).unwrap(), 4096);
        f.set_len(6000).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(4096 + rest.len(), 6000);
    }
}
