//! Which moments are restorable to the second: a snapshot with a cluster time `S`, rolled
//! forward through slices that cover `(S, T]` without a break, restores any `T` in that
//! range. Pure logic over snapshot and slice records; nothing is read here.

use serde::Serialize;

use crate::mongo::oplog::slice::{Gap, Slice};
use crate::snapshot::{ClusterTime, Snapshot};

/// A run of oplog time covered by slices without a break: `(after, until]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Exclusive start.
    pub after: ClusterTime,
    /// Inclusive end.
    pub until: ClusterTime,
    /// The server clock up to which the end is vouched for (an idle server has nothing
    /// after `until` up to then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_wall: Option<chrono::DateTime<chrono::Utc>>,
}

/// A continuous range of restorable moments, `[from, to]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Range {
    /// The earliest restorable moment (a snapshot's cluster time).
    pub from: ClusterTime,
    /// The latest.
    pub to: ClusterTime,
    /// Restorable up to this server clock time (at or after `to`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_wall: Option<chrono::DateTime<chrono::Utc>>,
}

/// What is restorable for one MongoDB source.
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    /// The server's identity (or, for data recorded before it was, the connection string
    /// without credentials).
    pub source: String,
    /// The connection string (without credentials) the newest snapshot of it used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Databases the oplog capture covers (empty: all).
    pub dbs: Vec<String>,
    /// Restorable ranges, oldest first.
    pub ranges: Vec<Range>,
    /// Oplog time covered by slices, oldest first (breaks between spans are gaps).
    pub spans: Vec<Span>,
    /// Losses reported by `follow` (the oplog rolled over before it could read).
    pub gaps: Vec<Gap>,
    /// Snapshots of this source with a cluster time.
    pub snapshots: usize,
    /// Slices of this source.
    pub slices: usize,
}

/// The union of the slices' covered ranges, merged where they touch or overlap.
pub fn spans(slices: &[&Slice]) -> Vec<Span> {
    let mut sorted: Vec<Span> = slices
        .iter()
        .map(|s| Span {
            after: s.after,
            until: s.until,
            until_wall: s.until_wall,
        })
        .collect();
    sorted.sort_by_key(|s| (s.after, s.until));
    let mut out: Vec<Span> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some(cur) if s.after <= cur.until => {
                cur.until = cur.until.max(s.until);
                cur.until_wall = cur.until_wall.max(s.until_wall);
            }
            _ => out.push(s),
        }
    }
    out
}

/// Restorable ranges: each snapshot time, extended to the end of the span holding it.
pub fn ranges(snapshot_times: &[ClusterTime], spans: &[Span]) -> Vec<Range> {
    let mut rs: Vec<Range> = snapshot_times
        .iter()
        .map(|&s| {
            let span = spans.iter().find(|sp| sp.after <= s && s <= sp.until);
            Range {
                from: s,
                to: span.map_or(s, |sp| sp.until),
                to_wall: span.and_then(|sp| sp.until_wall),
            }
        })
        .collect();
    rs.sort_by_key(|r| (r.from, r.to));
    let mut out: Vec<Range> = Vec::new();
    for r in rs {
        match out.last_mut() {
            Some(cur) if r.from <= cur.to => {
                cur.to = cur.to.max(r.to);
                cur.to_wall = cur.to_wall.max(r.to_wall);
            }
            _ => out.push(r),
        }
    }
    out
}

/// The source of a MongoDB snapshot and its cluster time, if it has both.
pub fn snapshot_point(s: &Snapshot) -> Option<(&str, ClusterTime)> {
    let m = s.mongodb.as_ref()?;
    Some((m.source_key(), m.cluster_time?))
}

/// Coverage of every source that has snapshots with a cluster time or slices.
pub fn compute(snapshots: &[Snapshot], slices: &[Slice]) -> Vec<Coverage> {
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for s in slices {
        let k = (s.source.clone(), s.dbs.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for s in snapshots {
        if let Some((src, _)) = snapshot_point(s) {
            if !keys.iter().any(|(k, _)| k == src) {
                keys.push((src.to_string(), Vec::new()));
            }
        }
    }
    keys.sort();
    keys.into_iter()
        .map(|(source, dbs)| {
            let mine: Vec<&Slice> = slices
                .iter()
                .filter(|s| s.source == source && s.dbs == dbs)
                .collect();
            let times: Vec<ClusterTime> = snapshots
                .iter()
                .filter_map(snapshot_point)
                .filter(|(src, _)| *src == source)
                .map(|(_, t)| t)
                .collect();
            let uri = snapshots
                .iter()
                .filter(|s| snapshot_point(s).is_some_and(|(src, _)| src == source))
                .max_by_key(|s| s.time)
                .and_then(|s| s.mongodb.as_ref())
                .map(|m| m.uri.clone());
            let sp = spans(&mine);
            let mut gaps: Vec<Gap> = mine.iter().filter_map(|s| s.gap).collect();
            gaps.sort_by_key(|g| g.from);
            gaps.dedup();
            Coverage {
                ranges: ranges(&times, &sp),
                spans: sp,
                gaps,
                snapshots: times.len(),
                slices: mine.len(),
                source,
                uri,
                dbs,
            }
        })
        .collect()
}

/// The restorable moments nearest to `t` outside the ranges: the end of the range
/// before it and the start of the range after it.
pub fn nearest(ranges: &[Range], t: ClusterTime) -> (Option<ClusterTime>, Option<ClusterTime>) {
    let before = ranges.iter().filter(|r| r.to < t).map(|r| r.to).max();
    let after = ranges.iter().filter(|r| r.from > t).map(|r| r.from).min();
    (before, after)
}

/// One slice of a roll-forward, with the part of its range to replay: `(from, to]`.
pub type Part<'a> = (&'a Slice, ClusterTime, ClusterTime);

/// Picks slices to roll forward from `start` towards `end`: each slice with the part of the
/// range to take from it, in order, and — when the chain stops short of `end` — the
/// moment nothing covers beyond.
pub fn plan<'a>(
    slices: &[&'a Slice],
    start: ClusterTime,
    end: ClusterTime,
) -> (Vec<Part<'a>>, Option<ClusterTime>) {
    let mut out = Vec::new();
    let mut cur = start;
    while cur < end {
        // Of the slices that hold the moment right after `cur`, the one reaching furthest.
        let Some(next) = slices
            .iter()
            .filter(|s| s.after <= cur && s.until > cur)
            .max_by_key(|s| s.until)
        else {
            return (out, Some(cur));
        };
        let to = next.until.min(end);
        out.push((*next, cur, to));
        cur = to;
    }
    (out, None)
}

/// The latest server clock reading that vouches for the chain ending at `end`: a slice
/// covering `end` read the oplog at that time and found nothing newer.
pub fn wall_at(slices: &[&Slice], end: ClusterTime) -> Option<chrono::DateTime<chrono::Utc>> {
    slices
        .iter()
        .filter(|s| s.after <= end && end <= s.until)
        .filter_map(|s| s.until_wall)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SliceId;

    fn ct(t: u32) -> ClusterTime {
        ClusterTime { t, i: 0 }
    }

    fn slice(after: u32, until: u32) -> Slice {
        Slice {
            version: 1,
            id: SliceId::random(),
            source: "m".into(),
            dbs: vec![],
            host: "h".into(),
            created: chrono::Utc::now(),
            after: ct(after),
            until: ct(until),
            until_wall: None,
            first: None,
            last: None,
            entries: 0,
            bytes: 0,
            chunks: vec![],
            gap: None,
        }
    }

    #[test]
    fn spans_merge_touching_and_overlapping_slices_and_keep_breaks() {
        let s = [slice(10, 20), slice(20, 30), slice(25, 40), slice(50, 60)];
        let refs: Vec<&Slice> = s.iter().collect();
        let sp = spans(&refs);
        assert_eq!(sp.len(), 2);
        assert_eq!((sp[0].after, sp[0].until), (ct(10), ct(40)));
        assert_eq!((sp[1].after, sp[1].until), (ct(50), ct(60)));
        // A snapshot inside a span restores to its end; one outside only to itself.
        let r = ranges(&[ct(15), ct(45), ct(50)], &sp);
        assert_eq!(
            r,
            vec![
                Range {
                    from: ct(15),
                    to: ct(40),
                    to_wall: None
                },
                Range {
                    from: ct(45),
                    to: ct(45),
                    to_wall: None
                },
                Range {
                    from: ct(50),
                    to: ct(60),
                    to_wall: None
                }
            ]
        );
        assert_eq!(nearest(&r, ct(47)), (Some(ct(45)), Some(ct(50))));
    }

    #[test]
    fn plan_chains_slices_and_names_the_first_uncovered_moment() {
        let s = [slice(10, 20), slice(20, 30), slice(15, 25), slice(40, 50)];
        let refs: Vec<&Slice> = s.iter().collect();
        let (p, missing) = plan(&refs, ct(12), ct(28));
        assert_eq!(missing, None);
        let parts: Vec<_> = p.iter().map(|(s, a, b)| (s.until, *a, *b)).collect();
        // From 12 only (10, 20] holds the next moment; then (20, 30] reaches further than
        // (15, 25].
        assert_eq!(
            parts,
            vec![(ct(20), ct(12), ct(20)), (ct(30), ct(20), ct(28))]
        );
        let (p, missing) = plan(&refs, ct(12), ct(45));
        assert_eq!((p.len(), missing), (2, Some(ct(30))));
        assert!(plan(&refs, ct(12), ct(12)).0.is_empty());
    }
}
