//! Small inline SVG charts (no script, nothing fetched): a sparkline for a size trend and
//! a step chart of a value over time. Each has a text alternative.

use chrono::{DateTime, Utc};

use super::page::{bytes, esc};

/// A 120×24 sparkline of `values` (oldest first), labelled for screen readers.
pub fn sparkline(values: &[u64], label: &str) -> String {
    if values.len() < 2 {
        return String::new();
    }
    let (w, h) = (120.0, 24.0);
    let max = values.iter().copied().max().unwrap_or(1).max(1) as f64;
    let min = values.iter().copied().min().unwrap_or(0) as f64;
    let span = (max - min).max(max * 0.05).max(1.0);
    let step = w / (values.len() - 1) as f64;
    let pts: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = h - 2.0 - (*v as f64 - min) / span * (h - 4.0);
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect();
    format!(
        "<svg class=\"spark\" width=\"120\" height=\"24\" viewBox=\"0 0 120 24\" role=\"img\" aria-label=\"{}\">\
<polyline fill=\"none\" stroke=\"#20313f\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        esc(label),
        pts.join(" ")
    )
}

/// A step chart of `points` (time, bytes) with its first and last values on the axis.
pub fn over_time(points: &[(DateTime<Utc>, u64)], label: &str) -> String {
    if points.is_empty() {
        return "<p class=\"muted\">No data yet.</p>".into();
    }
    let (w, h, pad) = (800.0, 200.0, 30.0);
    let t0 = points[0].0.timestamp() as f64;
    let t1 = (points[points.len() - 1].0.timestamp() as f64).max(t0 + 1.0);
    let max = points.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64;
    let x = |t: &DateTime<Utc>| pad + (t.timestamp() as f64 - t0) / (t1 - t0) * (w - 2.0 * pad);
    let y = |v: u64| h - pad - v as f64 / max * (h - 2.0 * pad);
    let mut d = String::new();
    for (i, (t, v)) in points.iter().enumerate() {
        if i == 0 {
            d.push_str(&format!("M{:.1},{:.1}", x(t), y(*v)));
        } else {
            d.push_str(&format!("H{:.1}V{:.1}", x(t), y(*v)));
        }
    }
    let last = points[points.len() - 1];
    // Seconds matter on a short axis, the date on a long one.
    let fmt = if t1 - t0 < 86_400.0 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    format!(
        "<svg viewBox=\"0 0 800 200\" width=\"800\" height=\"200\" role=\"img\" aria-label=\"{lab}: {first} on {d0}, {lastv} on {d1}\">\
<line x1=\"{pad}\" y1=\"{base}\" x2=\"{end}\" y2=\"{base}\" stroke=\"#999\"/>\
<path d=\"{d}\" fill=\"none\" stroke=\"#20313f\" stroke-width=\"2\"/>\
<text x=\"{pad}\" y=\"{ty}\" font-size=\"12\">{d0}</text><text x=\"{end}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\">{d1}</text>\
<text x=\"{pad}\" y=\"14\" font-size=\"12\">max {maxs}</text></svg>",
        lab = esc(label),
        first = bytes(points[0].1),
        lastv = bytes(last.1),
        d0 = points[0].0.format(fmt),
        d1 = last.0.format(fmt),
        base = h - pad,
        end = w - pad,
        ty = h - 8.0,
        maxs = bytes(max as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_labelled_and_escape_labels() {
        assert_eq!(sparkline(&[1], "x"), "");
        let s = sparkline(&[1, 5, 3], "size <trend>");
        assert!(s.contains("aria-label=\"size &lt;trend&gt;\"") && s.contains("polyline"));
        let t = Utc::now();
        let c = over_time(&[(t, 10), (t + chrono::Duration::hours(1), 2048)], "size");
        assert!(c.contains("2.0 KiB") && c.contains("role=\"img\""));
    }
}
