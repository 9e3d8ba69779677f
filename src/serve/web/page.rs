//! The dashboard's shared HTML: escaping, the page frame with its navigation and sign-out
//! form, and small formatting helpers. Every value from the config, the repository, the
//! plan state or a job goes through [`esc`]; the layout is one readable column at phone
//! width and tables that scroll sideways, with visible focus and labelled controls.

use chrono::{DateTime, Utc};

use crate::serve::auth::Caller;
use crate::serve::tokens::Role;

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn url(s: impl AsRef<[u8]>) -> String {
    let s = s.as_ref();
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value of `key` in the request's query, percent-decoded to bytes (the first one).
/// serde's query decoding makes text, turning bytes that are not UTF-8 into U+FFFD: a
/// snapshot path whose names are not UTF-8 would then name no entry, or another one.
/// Links carry paths as percent-encoded bytes ([`url`]).
pub fn query_bytes(uri: &axum::http::Uri, key: &str) -> Option<Vec<u8>> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key.as_bytes()).then(|| percent_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space, `%XX` a byte;
/// a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let pair = b
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(b.get(i + 2).copied().and_then(hex));
        match (b[i], pair) {
            (b'%', Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    out
}

const STYLE: &str = "body{font:16px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}\
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;background:#20313f;color:#fff}\
header a{color:#fff}header button{color:#fff;background:transparent;border:1px solid #fff;border-radius:.25rem}nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}\
nav a[aria-current]{font-weight:700;text-decoration-thickness:3px}main{padding:1rem;max-width:80rem;margin:auto}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.5rem;border-bottom:1px solid #ddd;vertical-align:top}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.scroll{overflow-x:auto}\
.badge{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-weight:600}\
.ok{background:#d7f5dd;color:#0b5d1e}.amber{background:#fff1c2;color:#6b4e00}.red{background:#ffd9d6;color:#8a1c12}.grey{background:#e6e6e6;color:#333}\
button,.button{font:inherit;padding:.35rem .8rem;cursor:pointer}:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}\
label{display:block;font-weight:600;margin:.5rem 0 .25rem}input,select{font:inherit;padding:.4rem;width:100%;max-width:30rem;box-sizing:border-box}\
input[type=checkbox],input[type=radio]{width:auto}fieldset{border:1px solid #ccc;margin:.75rem 0;padding:.5rem 1rem}\
.filters{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:0 1rem;align-items:end}\
.error{color:#8a1c12;font-weight:600}.muted{color:#555}pre{white-space:pre-wrap;word-break:break-word;background:#fff;padding:.5rem;border:1px solid #ddd}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
svg{max-width:100%;height:auto}.sr{position:absolute;left:-9999px}progress{width:100%;max-width:30rem;height:1.25rem}\
.tl a:focus rect{stroke:#1a73e8;stroke-width:3}";

/// Who is looking at a page, and the session's CSRF token for its forms.
pub struct Frame<'a> {
    pub caller: &'a Caller,
    pub csrf: &'a str,
}

impl Frame<'_> {
    /// Whether the caller may do what needs `role` (so the page shows its button).
    pub fn can(&self, role: Role) -> bool {
        self.caller.role >= role
    }

    /// The hidden CSRF field every state-changing form carries.
    pub fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            esc(self.csrf)
        )
    }
}

const NAV: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/snapshots", "Snapshots"),
    ("/restore", "Restore"),
    ("/history", "History"),
    ("/storage", "Storage"),
];

fn document(title: &str, head_extra: &str, header: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head_extra}\
<title>{t} — repo</title><style>{STYLE}</style></head><body>\
<header>{header}</header><main id=\"main\">{body}</main></body></html>",
        t = esc(title)
    )
}

/// A signed-in page: navigation (the current page marked), who is signed in, sign-out.
pub fn layout(f: &Frame, title: &str, current: &str, body: &str) -> String {
    layout_with(f, title, current, "", body)
}

/// [`layout`] with extra `<head>` markup (a refresh while a job runs).
pub fn layout_with(f: &Frame, title: &str, current: &str, head: &str, body: &str) -> String {
    let mut nav = String::from("<nav aria-label=\"Pages\"><ul>");
    for (href, name) in NAV {
        let cur = if href == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        nav.push_str(&format!("<li><a href=\"{href}\"{cur}>{name}</a></li>"));
    }
    nav.push_str("</ul></nav>");
    let signed = format!(
        "<form method=\"post\" action=\"/logout\"><span>{} ({})</span> {}<button type=\"submit\">Sign out</button></form>",
        esc(&f.caller.name),
        f.caller.role.as_str(),
        f.csrf_field()
    );
    document(
        title,
        head,
        &format!("<strong>repo</strong>{nav}{signed}"),
        body,
    )
}

/// The sign-in page, with an error to show.
pub fn login(error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{err}<form method=\"post\" action=\"/login\">\
<label for=\"token\">API token</label>\
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
<p><button type=\"submit\" id=\"sign-in\">Sign in</button></p></form>\
<p>Create a token on the server with <code>repo token create --name NAME --role viewer</code>.</p>"
    );
    document("Sign in", "", "<strong>repo</strong>", &body)
}

/// A page that only says something.
pub fn message(title: &str, text: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
        esc(title),
        esc(text)
    );
    document(title, "", "<strong>repo</strong>", &body)
}

/// A moment, machine-readable and to the second.
pub fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| {
        format!(
            "<time datetime=\"{}\">{}</time>",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            t.format("%Y-%m-%d %H:%M:%S UTC")
        )
    })
    .unwrap_or_else(|| "—".into())
}

/// Bytes in binary units ("1.5 GiB").
pub use crate::timespec::format_size as bytes;

/// A table with a header row; cells are HTML already escaped by the caller.
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "<div class=\"scroll\"><table><caption class=\"sr\">{}</caption><thead><tr>",
        esc(caption)
    );
    for h in head {
        s.push_str(&format!("<th scope=\"col\">{h}</th>"));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            s.push_str(&format!("<td>{c}</td>"));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

/// A labelled text field.
pub fn field(id: &str, label: &str, value: &str, hint: &str) -> String {
    let hint_html = if hint.is_empty() {
        String::new()
    } else {
        format!(
            "<small id=\"{id}-hint\" class=\"muted\">{}</small>",
            esc(hint)
        )
    };
    let described = if hint.is_empty() {
        String::new()
    } else {
        format!(" aria-describedby=\"{id}-hint\"")
    };
    format!(
        "<div><label for=\"{id}\">{}</label><input id=\"{id}\" name=\"{id}\" value=\"{}\"{described}>{hint_html}</div>",
        esc(label),
        esc(value)
    )
}

/// A labelled choice among `options` (value, text).
pub fn choice(id: &str, label: &str, options: &[(&str, &str)], selected: &str) -> String {
    let mut s = format!(
        "<div><label for=\"{id}\">{}</label><select id=\"{id}\" name=\"{id}\">",
        esc(label)
    );
    for (v, t) in options {
        let sel = if *v == selected { " selected" } else { "" };
        s.push_str(&format!(
            "<option value=\"{}\"{sel}>{}</option>",
            esc(v),
            esc(t)
        ));
    }
    s.push_str("</select></div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        let page = login(Some("<script>alert(1)</script>"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("<label for=\"token\">"));
        assert_eq!(url("/a b/ü&x=1"), "/a%20b/%C3%BC%26x%3D1");
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn query_paths_come_back_as_the_bytes_the_link_encoded() {
        let name = b"/d/x\xff y+%".to_vec();
        let link = format!("/s?repository=a&path={}&x", url(&name));
        let uri: axum::http::Uri = link.parse().expect("uri");
        assert_eq!(query_bytes(&uri, "path"), Some(name));
        assert_eq!(query_bytes(&uri, "repository"), Some(b"a".to_vec()));
        assert_eq!(query_bytes(&uri, "x"), Some(Vec::new()));
        assert_eq!(query_bytes(&uri, "y"), None);
        let uri: axum::http::Uri = "/s?path=a+b%2&q=%zz%41".parse().expect("uri");
        assert_eq!(query_bytes(&uri, "path").as_deref(), Some(&b"a b%2"[..]));
        assert_eq!(query_bytes(&uri, "q").as_deref(), Some(&b"%zzA"[..]));
    }
}
