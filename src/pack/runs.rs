//! Coalescing of blob reads: nearby blobs of one pack are fetched with one range request.

use crate::index::BlobLocation;

/// Blobs further apart than this are read with separate requests (a gap costs transfer,
/// a request costs a round trip).
pub const MAX_READ_GAP: u64 = 1 << 20;

/// Upper bound of one read, so memory stays bounded whatever the pack size.
pub const MAX_READ: u64 = 16 << 20;

/// Splits `items` — blobs of one pack, sorted by offset — into runs read with one request
/// each; `loc` says where an item's blob is.
pub fn read_runs<T>(items: &[T], loc: impl Fn(&T) -> &BlobLocation) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let mut first = 0;
    let mut end = 0u64;
    for (i, item) in items.iter().enumerate() {
        let l = loc(item);
        let item_end = l.offset + u64::from(l.length);
        if i > first
            && (l.offset > end + MAX_READ_GAP || item_end - loc(&items[first]).offset > MAX_READ)
        {
            runs.push(&items[first..i]);
            first = i;
        }
        end = if i == first {
            item_end
        } else {
            end.max(item_end)
        };
    }
    if first < items.len() {
        runs.push(&items[first..]);
    }
    runs
}

/// The byte range `(start, len)` one run covers.
pub fn span<T>(run: &[T], loc: impl Fn(&T) -> &BlobLocation) -> (u64, u64) {
    let start = run.first().map_or(0, |i| loc(i).offset);
    let end = run
        .iter()
        .map(|i| loc(i).offset + u64::from(loc(i).length))
        .max()
        .unwrap_or(start);
    (start, end - start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::PackId;

    fn at(offset: u64, length: u32) -> BlobLocation {
        BlobLocation {
            pack: PackId([0; 32]),
            offset,
            length,
            raw_length: length,
            unit_offset: 0,
            unit_length: length,
        }
    }

    #[test]
    fn near_blobs_share_a_read_and_far_or_large_ones_do_not() {
        let locs = [
            at(0, 100),
            at(200, 100),
            at(300 + MAX_READ_GAP + 1, 10),
            at(400 + MAX_READ_GAP, (MAX_READ) as u32),
        ];
        let runs = read_runs(&locs, |l| l);
        let lens: Vec<usize> = runs.iter().map(|r| r.len()).collect();
        assert_eq!(lens, vec![2, 1, 1]);
        assert_eq!(span(runs[0], |l| l), (0, 300));
    }
}
