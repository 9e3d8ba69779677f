//! `/snapshots`: the list with filters (plan, host, path, tag, source, time), one
//! snapshot's summary with a browser of its tree (downloads are `download.rs`), and the
//! diff against its parent.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::page::{bytes, esc, layout, query_bytes, table, url, when};
use super::Viewer;
use crate::ops::context::Ctx;
use crate::ops::select::SnapshotRef;
use crate::ops::{diff as diffop, snapshots as snapshotsop};
use crate::selection::SnapshotFilter;
use crate::serve::problem::{ApiResult, Problem};
use crate::serve::Service;
use crate::snapshot::Snapshot;
use crate::tree::path::{shown, SnapPath};
use crate::tree::walk::{TreeWalk, Visit};
use crate::tree::NodeKind;

/// A form value, `None` when left empty.
pub fn nz(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The list's filters, as the form sends them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    repository: Option<String>,
    plan: Option<String>,
    host: Option<String>,
    path: Option<String>,
    tag: Option<String>,
    source: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn filter_of(q: &ListQuery) -> ApiResult<SnapshotFilter> {
    let now = chrono::Utc::now();
    let time = |what: &str, v: Option<&str>| {
        v.map(|s| {
            crate::timespec::parse_time(s, now)
                .map_err(|e| Problem::invalid(format!("{what} {s:?}: {e}")))
        })
        .transpose()
    };
    let mut f = SnapshotFilter::default();
    f.hosts.extend(nz(&q.host).map(str::to_string));
    f.tags.extend(nz(&q.tag).map(str::to_string));
    f.tags.extend(nz(&q.plan).map(|p| format!("plan:{p}")));
    f.paths.extend(nz(&q.path).map(str::to_string));
    f.source = nz(&q.source).map(str::to_string);
    f.since = time("since", nz(&q.since))?;
    f.until = time("until", nz(&q.until))?;
    Ok(f)
}

/// `?repository=NAME` for links, when one was chosen.
pub fn repo_arg(repository: Option<&str>) -> String {
    repository.map_or(String::new(), |r| format!("repository={}&", url(r)))
}

fn filters_form(svc: &Service, q: &ListQuery) -> String {
    use super::page::{choice, field};
    let mut s = String::from(
        "<form method=\"get\" action=\"/snapshots\" aria-label=\"Filter snapshots\"><div class=\"filters\">",
    );
    if svc.config.repositories.len() > 1 {
        let names: Vec<(&str, &str)> = svc
            .config
            .repositories
            .keys()
            .map(|k| (k.as_str(), k.as_str()))
            .collect();
        s.push_str(&choice(
            "repository",
            "Repository",
            &names,
            nz(&q.repository).unwrap_or(""),
        ));
    }
    let mut plans: Vec<(&str, &str)> = vec![("", "any")];
    plans.extend(svc.config.plans.keys().map(|k| (k.as_str(), k.as_str())));
    s.push_str(&choice("plan", "Plan", &plans, nz(&q.plan).unwrap_or("")));
    s.push_str(&field("host", "Host", nz(&q.host).unwrap_or(""), ""));
    s.push_str(&field(
        "path",
        "Holds path",
        nz(&q.path).unwrap_or(""),
        "an absolute path",
    ));
    s.push_str(&field("tag", "Tag", nz(&q.tag).unwrap_or(""), ""));
    s.push_str(&choice(
        "source",
        "Source",
        &[("", "any"), ("files", "files"), ("mongodb", "MongoDB")],
        nz(&q.source).unwrap_or(""),
    ));
    s.push_str(&field(
        "since",
        "Taken since",
        nz(&q.since).unwrap_or(""),
        "7d, 2026-11-28, …",
    ));
    s.push_str(&field(
        "until",
        "Taken until",
        nz(&q.until).unwrap_or(""),
        "",
    ));
    s.push_str("</div><p><button type=\"submit\">Filter</button> <a href=\"/snapshots\">Clear</a></p></form>");
    s
}

/// The snapshot list, newest first.
pub async fn list(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Response {
    v.page(move |f| {
        let form = filters_form(&svc, &q);
        let filter = filter_of(&q)?;
        let (_, repo) = svc.repository(nz(&q.repository))?;
        let req = snapshotsop::SnapshotsRequest {
            filter,
            latest: None,
        };
        let mut snaps = snapshotsop::run(&repo, &req, &Ctx::default())?;
        snaps.reverse();
        let ra = repo_arg(nz(&q.repository));
        let rows: Vec<Vec<String>> = snaps.iter().take(1000).map(|s| row(s, &ra)).collect();
        let count = if snaps.len() > rows.len() {
            format!(
                "{} snapshots; the newest {} shown.",
                snaps.len(),
                rows.len()
            )
        } else {
            format!("{} snapshots.", snaps.len())
        };
        let body = format!(
            "<h1>Snapshots</h1>{form}<p role=\"status\">{count}</p>{}",
            table(
                "Snapshots",
                &["Taken", "Snapshot", "Host", "Source", "Paths", "Tags", "Size", "Added"],
                &rows
            )
        );
        Ok(layout(f, "Snapshots", "/snapshots", &body))
    })
    .await
}

fn row(s: &Snapshot, ra: &str) -> Vec<String> {
    vec![
        when(Some(s.time)),
        format!(
            "<a href=\"/snapshots/{id}?{ra}\" data-snapshot=\"{id}\">{}</a>",
            s.id.short(),
            id = s.id
        ),
        esc(&s.host),
        esc(&s.source.kind),
        esc(&s.paths.join(", ")),
        esc(&s.tags.join(", ")),
        bytes(s.summary.total_bytes),
        bytes(s.summary.bytes_added),
    ]
}

/// Which snapshot page: a path inside it (read as bytes: [`snapshot_path`]), and the
/// repository.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShowQuery {
    repository: Option<String>,
}

/// The query's `path` as bytes (names need not be UTF-8); the root when there is none.
pub fn snapshot_path(uri: &axum::http::Uri) -> SnapPath {
    query_bytes(uri, "path")
        .filter(|p| !p.is_empty())
        .map_or_else(SnapPath::root, SnapPath::from_bytes)
}

fn summary(s: &Snapshot, ra: &str) -> String {
    let m = &s.summary;
    let mut d = vec![
        ("Snapshot", format!("<code>{}</code>", s.id)),
        ("Taken", when(Some(s.time))),
        ("Host", esc(&format!("{} (user {})", s.host, s.user))),
        (
            "Source",
            esc(&format!("{}: {}", s.source.kind, s.source.description)),
        ),
        ("Paths", esc(&s.paths.join(", "))),
        ("Tags", esc(&s.tags.join(", "))),
        (
            "Files",
            format!(
                "{} new, {} changed, {} unchanged, {} removed; {} directories",
                m.files_new, m.files_changed, m.files_unchanged, m.files_removed, m.dirs
            ),
        ),
        ("Size", bytes(m.total_bytes)),
        (
            "Added to the repository",
            format!(
                "{} stored ({} before compression)",
                bytes(m.bytes_added),
                bytes(m.bytes_added_raw)
            ),
        ),
        ("Took", format!("{:.1} s", m.duration_secs)),
    ];
    if let Some(p) = &s.parent {
        d.push((
            "Parent",
            format!("<a href=\"/snapshots/{p}?{ra}\">{}</a>", p.short()),
        ));
    }
    if let Some(mg) = &s.mongodb {
        let at = mg
            .cluster_time
            .map_or("—".to_string(), |t| esc(&t.to_string()));
        d.push((
            "MongoDB",
            format!(
                "{} — {} collections, {}, as of {at}",
                esc(&mg.uri),
                mg.collections,
                esc(&mg.consistency)
            ),
        ));
    }
    if !m.skipped.is_empty() {
        d.push(("Not readable", esc(&format!("{} paths", m.skipped.len()))));
    }
    let mut out = String::from("<dl>");
    for (k, v) in d {
        out.push_str(&format!("<dt>{k}</dt><dd>{v}</dd>"));
    }
    out.push_str("</dl>");
    out
}

fn crumbs(id: &str, path: &SnapPath, ra: &str) -> String {
    let mut s = format!("<nav aria-label=\"Path\"><a href=\"/snapshots/{id}?{ra}path=/\">/</a>");
    let mut acc = SnapPath::default();
    for c in path.components() {
        acc.push(c);
        s.push_str(&format!(
            " <a href=\"/snapshots/{id}?{ra}path={}\">{}</a> /",
            url(&acc),
            esc(&shown(c))
        ));
    }
    s.push_str("</nav>");
    s
}

/// The entries directly inside `path` (at most `limit`), and how many there are.
fn children(
    repo: &crate::repository::Repository,
    snap: &Snapshot,
    path: &SnapPath,
    limit: usize,
) -> ApiResult<(Vec<(SnapPath, crate::tree::Node)>, usize)> {
    let mut out = Vec::new();
    let mut total = 0;
    TreeWalk::new(repo).walk_from(&snap.tree, path, &mut |p, n| {
        if p.components().eq(path.components()) {
            return Ok(if n.kind() == NodeKind::Dir {
                Visit::Descend
            } else {
                Visit::Skip
            });
        }
        total += 1;
        if out.len() < limit {
            out.push((p.clone(), n.clone()));
        }
        Ok(Visit::Skip)
    })?;
    Ok((out, total))
}

/// A snapshot: its summary, and the directory `path` of its tree.
pub async fn show(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    axum::extract::Query(q): axum::extract::Query<ShowQuery>,
) -> Response {
    v.page(move |f| {
        let (_, repo) = svc.repository(nz(&q.repository))?;
        let snap = crate::ops::select::snapshot(&repo, &SnapshotRef::id(id), &[])?;
        let path = snapshot_path(&uri);
        let ra = repo_arg(nz(&q.repository));
        let (entries, total) = children(&repo, &snap, &path, 2000)?;
        let sid = snap.id.to_string();
        let rows: Vec<Vec<String>> = entries.iter().map(|(p, n)| entry_row(&sid, &ra, p, n)).collect();
        let more = if total > rows.len() {
            format!("<p>{total} entries; the first {} shown.</p>", rows.len())
        } else {
            String::new()
        };
        // A path that is not UTF-8 goes as hex: the form's text fields cannot hold it.
        let what = match std::str::from_utf8(path.as_bytes()) {
            Ok(_) => format!("include={}", url(&path)),
            Err(_) => format!("include_hex={}", hex::encode(path.as_bytes())),
        };
        let restore = format!(
            "<a href=\"/restore?snapshot={sid}&{ra}{what}\">Restore {}…</a>",
            if path.is_root() { "this snapshot".to_string() } else { esc(&path.display()) }
        );
        let body = format!(
            "<h1>Snapshot {short}</h1>{sum}<p><a href=\"/snapshots/{sid}/diff?{ra}\">Compare with its parent</a> · {restore} · \
<a href=\"/snapshots/{sid}/tar?{ra}path={p}\" download>Download {what} as tar</a></p>\
<h2>Contents of {pe}</h2>{crumbs}{more}{tbl}",
            short = snap.id.short(),
            sum = summary(&snap, &ra),
            p = url(&path),
            what = if path.is_root() { "everything".to_string() } else { esc(&path.display()) },
            pe = esc(&path.display()),
            crumbs = crumbs(&sid, &path, &ra),
            tbl = table("Entries", &["Name", "Type", "Mode", "Size", "Modified", ""], &rows),
        );
        Ok(layout(f, &format!("Snapshot {}", snap.id.short()), "/snapshots", &body))
    })
    .await
}

fn entry_row(sid: &str, ra: &str, p: &SnapPath, n: &crate::tree::Node) -> Vec<String> {
    let name = esc(&shown(&n.name));
    let (link, action) = match n.kind() {
        NodeKind::Dir => (
            format!("<a href=\"/snapshots/{sid}?{ra}path={}\">{name}/</a>", url(p)),
            format!("<a href=\"/snapshots/{sid}/tar?{ra}path={}\" download>tar</a>", url(p)),
        ),
        NodeKind::File => (
            name.clone(),
            format!(
                "<a href=\"/snapshots/{sid}/file?{ra}path={}\" download aria-label=\"Download {name}\" data-download=\"{}\">Download</a>",
                url(p),
                esc(&p.display())
            ),
        ),
        NodeKind::Symlink => (
            format!("{name} → {}", esc(&shown(&n.target))),
            String::new(),
        ),
        _ => (name.clone(), String::new()),
    };
    vec![
        link,
        format!("{:?}", n.kind()).to_lowercase(),
        format!("{:04o}", n.mode),
        if n.kind() == NodeKind::File {
            bytes(n.size)
        } else {
            String::new()
        },
        esc(&crate::tree::format_time(n.mtime)),
        action,
    ]
}

/// The diff of a snapshot against its parent.
pub async fn diff(
    State(svc): State<Arc<Service>>,
    v: Viewer,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ShowQuery>,
) -> Response {
    v.page(move |f| {
        let (_, repo) = svc.repository(nz(&q.repository))?;
        let snap = crate::ops::select::snapshot(&repo, &SnapshotRef::id(id), &[])?;
        let ra = repo_arg(nz(&q.repository));
        let Some(parent) = snap.parent else {
            let body = format!(
                "<h1>Changes in {}</h1><p>This snapshot has no parent: it was the first of its series, so everything in it was new.</p>\
<p><a href=\"/snapshots/{}?{ra}\">Back to the snapshot</a></p>",
                snap.id.short(),
                snap.id
            );
            return Ok(layout(f, "Changes", "/snapshots", &body));
        };
        let req = diffop::DiffRequest {
            from: SnapshotRef::id(parent.to_string()),
            to: SnapshotRef::id(snap.id.to_string()),
        };
        let d = diffop::run(&repo, &req, &Ctx::default())?;
        let t = &d.totals;
        let rows: Vec<Vec<String>> = d
            .changes
            .iter()
            .take(5000)
            .map(|c| {
                let size = |s: Option<u64>| s.map(bytes).unwrap_or_default();
                vec![
                    format!("{:?}", c.change).to_lowercase(),
                    esc(&c.path.display()),
                    size(c.size_before),
                    size(c.size_after),
                ]
            })
            .collect();
        let body = format!(
            "<h1>Changes in {short}</h1><p>Compared with its parent <a href=\"/snapshots/{p}?{ra}\">{ps}</a>: \
{} added ({}), {} removed ({}), {} modified, {} with changed metadata.</p>{}",
            t.added,
            bytes(t.bytes_added),
            t.removed,
            bytes(t.bytes_removed),
            t.modified,
            t.metadata,
            table("Changes", &["Change", "Path", "Size before", "Size after"], &rows),
            short = snap.id.short(),
            p = parent,
            ps = parent.short(),
        );
        Ok(layout(f, "Changes", "/snapshots", &body))
    })
    .await
}
