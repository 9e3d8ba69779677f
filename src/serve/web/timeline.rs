//! The MongoDB timeline of the Restore page: per server, its restorable ranges (snapshots
//! rolled forward through the captured oplog) on a time axis, drawn as inline SVG with no
//! script. Each slot inside a range is a link to its moment (keyboard-reachable, with a
//! title); lost oplog is red; the ranges are also listed as text with their ends.

use chrono::{DateTime, Utc};

#[cfg(feature = "mongo")]
use super::page::{esc, when};
#[cfg(feature = "mongo")]
use crate::ops::context::Ctx;
use crate::repository::Repository;
use crate::serve::problem::ApiResult;

/// How many clickable moments a timeline row offers.
const SLOTS: i64 = 96;

/// For each MongoDB source, its restorable ranges on a time axis: each slot inside a
/// range is a link that puts its moment in the form; gaps (oplog lost) are red.
#[cfg(feature = "mongo")]
pub fn render(repo: &Repository, link: &dyn Fn(DateTime<Utc>) -> String) -> ApiResult<String> {
    let cov = crate::ops::mongodb::coverage(repo, &Default::default(), &Ctx::default())?;
    if cov.sources.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::from(
        "<section aria-labelledby=\"tl\"><h2 id=\"tl\">MongoDB: restorable moments</h2>",
    );
    for c in &cov.sources {
        out.push_str(&source(c, link));
    }
    out.push_str("</section>");
    Ok(out)
}

/// Without MongoDB support there is nothing to draw.
#[cfg(not(feature = "mongo"))]
pub fn render(_: &Repository, _: &dyn Fn(DateTime<Utc>) -> String) -> ApiResult<String> {
    Ok(String::new())
}

#[cfg(feature = "mongo")]
fn source(
    c: &crate::mongo::oplog::coverage::Coverage,
    link: &dyn Fn(DateTime<Utc>) -> String,
) -> String {
    let secs = |t: DateTime<Utc>| t.timestamp();
    let ranges: Vec<(i64, i64)> = c
        .ranges
        .iter()
        .map(|r| {
            let to = r
                .to_wall
                .map_or(i64::from(r.to.t), secs)
                .max(i64::from(r.to.t));
            (i64::from(r.from.t), to)
        })
        .collect();
    let gaps: Vec<(i64, i64)> = c
        .gaps
        .iter()
        .map(|g| (i64::from(g.from.t), i64::from(g.to.t)))
        .collect();
    let start = ranges.iter().chain(&gaps).map(|r| r.0).min().unwrap_or(0);
    let end = ranges
        .iter()
        .chain(&gaps)
        .map(|r| r.1)
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let at_time = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default();
    let link = |t: i64| link(at_time(t));
    let (w, h) = (960.0, 36.0);
    let slot_w = w / SLOTS as f64;
    let mut svg = format!(
        "<svg class=\"tl\" viewBox=\"0 0 960 56\" width=\"960\" height=\"56\" role=\"group\" aria-label=\"Restorable moments of {}\">",
        esc(&c.source)
    );
    for i in 0..SLOTS {
        let mid = start as f64 + (i as f64 + 0.5) * (end - start) as f64 / SLOTS as f64;
        let x = i as f64 * slot_w;
        let inside = ranges
            .iter()
            .find(|r| mid >= r.0 as f64 - 0.5 && mid <= r.1 as f64 + 0.5);
        match inside {
            Some(r) => {
                let t = (mid.floor() as i64).clamp(r.0, r.1);
                let label = at_time(t).format("%Y-%m-%d %H:%M:%S UTC");
                svg.push_str(&format!(
                    "<a href=\"{href}\" data-at=\"{iso}\" aria-label=\"Restore to {label}\"><rect x=\"{x:.1}\" y=\"4\" width=\"{sw:.1}\" height=\"{h}\" fill=\"#2e9e4f\"/><title>{label}</title></a>",
                    href = esc(&link(t)),
                    iso = at_time(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    sw = slot_w,
                ));
            }
            None => {
                let lost = gaps.iter().any(|g| mid >= g.0 as f64 && mid <= g.1 as f64);
                let (fill, what) = if lost {
                    ("#c0392b", "oplog lost")
                } else {
                    ("#ddd", "not restorable")
                };
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"4\" width=\"{slot_w:.1}\" height=\"{h}\" fill=\"{fill}\" data-gap=\"{what}\"><title>{what}</title></rect>"
                ));
            }
        }
    }
    svg.push_str(&format!(
        "<text x=\"0\" y=\"54\" font-size=\"12\">{}</text><text x=\"960\" y=\"54\" font-size=\"12\" text-anchor=\"end\">{}</text></svg>",
        at_time(start).format("%Y-%m-%d %H:%M:%S"),
        at_time(end).format("%Y-%m-%d %H:%M:%S")
    ));
    let mut text = String::from("<ul>");
    for (a, b) in &ranges {
        text.push_str(&format!(
            "<li>Restorable from <a href=\"{}\">{}</a> to <a href=\"{}\">{}</a></li>",
            esc(&link(*a)),
            when(Some(at_time(*a))),
            esc(&link(*b)),
            when(Some(at_time(*b)))
        ));
    }
    for (a, b) in &gaps {
        text.push_str(&format!(
            "<li class=\"error\">Oplog lost between {} and {}</li>",
            when(Some(at_time(*a))),
            when(Some(at_time(*b)))
        ));
    }
    text.push_str("</ul>");
    format!(
        "<h3>{}</h3><p class=\"muted\">{} snapshots, {} oplog slices. Choose a moment: the green stretches are restorable to the second.</p><div class=\"scroll\">{svg}</div>{text}",
        esc(c.uri.as_deref().unwrap_or(&c.source)),
        c.snapshots,
        c.slices
    )
}
