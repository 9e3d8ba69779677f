//! The dashboard's sign-in and overview over real HTTP: a token becomes an HttpOnly,
//! SameSite=Strict session cookie; the overview lists plans failing first with their
//! health; operators get a Run button that needs the session's CSRF token, viewers get
//! none and are refused; a revoked token ends its sessions; signing out ends one.

use std::time::{Duration, Instant};

use crate::common::Env;
use crate::serve_client::{config, token, Server};

struct Browser {
    agent: ureq::Agent,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    csp: Option<String>,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Browser {
            agent,
            base: base.to_string(),
            cookie: None,
        }
    }

    fn page(mut res: ureq::http::Response<ureq::Body>) -> Page {
        let h = |k: &str| {
            res.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (location, set_cookie, csp) =
            (h("location"), h("set-cookie"), h("content-security-policy"));
        Page {
            status: res.status().as_u16(),
            location,
            set_cookie,
            csp,
            body: res.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    fn get(&self, path: &str) -> Page {
        let mut r = self.agent.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("Cookie", c);
        }
        Self::page(r.call().unwrap())
    }

    fn post(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut r = self.agent.post(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("Cookie", c);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        Self::page(r.send_form(form.iter().copied()).unwrap())
    }

    /// Signs in with `token`; keeps the cookie.
    fn sign_in(&mut self, token: &str) -> Page {
        let p = self.post("/login", &[("token", token)], &[]);
        if let Some(c) = &p.set_cookie {
            self.cookie = c.split(';').next().map(str::to_string);
        }
        p
    }
}

/// The session's CSRF token, from a form on `page`.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with csrf")
        + 19;
    page[at..at + 64].to_string()
}

#[test]
fn dashboard_sign_in_overview_run_csrf_and_sign_out() {
    let env = Env::new();
    env.init();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    config(
        &env,
        &format!(
            r#"[repositories.main]
location = "{repo}"
password-env = "REPO_PASSWORD"

[plans.files]
repository = "main"
paths = ["{data}"]

[plans.broken]
repository = "main"
paths = ["{missing}"]
"#,
            repo = env.repo().display(),
            data = data.display(),
            missing = env.path("gone").display(),
        ),
    );
    let viewer = token(&env, "eyes", "viewer");
    let op = token(&env, "hands", "operator");
    let admin = token(&env, "root", "admin");
    let srv = Server::start(&env, &[]);
    let mut b = Browser::new(&srv.base);

    // Not signed in: to the sign-in page, which labels its field.
    let p = b.get("/");
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/login")));
    let p = b.get("/login");
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("<label for=\"token\">API token</label>"),
        "{}",
        p.body
    );
    assert!(p.csp.unwrap().contains("default-src 'none'"));
    let p = b.sign_in("repo_0000");
    assert_eq!(p.status, 401);
    assert!(p.set_cookie.is_none() && p.body.contains("Unknown or revoked token"));

    // A viewer: cookie flags, the overview, no buttons, and a refused run.
    let p = b.sign_in(&viewer);
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/")));
    let c = p.set_cookie.unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"),
        "{c}"
    );
    assert!(!c.contains(&viewer), "the cookie is not the token");
    let p = b.get("/");
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("data-plan=\"files\"") && p.body.contains("eyes (viewer)"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("Run now"), "viewers get no buttons");
    let token = csrf(&p.body);
    let p = b.post("/ui/plans/files/run", &[("csrf", &token)], &[]);
    assert_eq!(p.status, 403);
    // Nor can a viewer restore or cancel by posting the forms by hand.
    let target = env.path("r");
    let p = b.post(
        "/ui/restore",
        &[
            ("csrf", &token),
            ("mode", "files"),
            ("target", target.to_str().unwrap()),
        ],
        &[],
    );
    assert_eq!(p.status, 403, "{}", p.body);
    assert_eq!(
        b.post("/ui/jobs/x/cancel", &[("csrf", &token)], &[]).status,
        403
    );
    // Every page renders for a viewer, with the navigation marking where it is.
    for page in ["/snapshots", "/restore", "/history", "/storage"] {
        let p = b.get(page);
        assert_eq!(p.status, 200, "{page}: {}", p.body);
        assert!(
            p.body
                .contains(&format!("<a href=\"{page}\" aria-current=\"page\">")),
            "{page}"
        );
    }
    // The cookie reads the API, but a change needs the CSRF header.
    let viewer_b = b;
    let p = viewer_b.get("/api/jobs");
    assert_eq!(p.status, 200, "{}", p.body);

    // An operator runs plans from the overview.
    let mut b = Browser::new(&srv.base);
    b.sign_in(&op);
    let p = b.get("/");
    assert!(p.body.contains("Run now") && p.body.contains("aria-label=\"Run plan files now\""));
    let token = csrf(&p.body);
    assert_eq!(b.post("/ui/plans/files/run", &[], &[]).status, 400);
    assert_eq!(
        b.post("/ui/plans/files/run", &[("csrf", &"0".repeat(64))], &[])
            .status,
        403
    );
    let api = b.post("/api/plans/files/run", &[], &[]);
    assert_eq!(
        api.status, 403,
        "a cookie without X-CSRF-Token: {}",
        api.body
    );
    let p = b.post("/ui/plans/files/run", &[("csrf", &token)], &[]);
    assert_eq!(p.status, 303, "{}", p.body);
    let job_page = p.location.unwrap();
    assert!(
        job_page.starts_with("/jobs/"),
        "to the job's page: {job_page}"
    );
    let p = b.get(&job_page);
    assert!(p.body.contains("data-state="), "{}", p.body);
    let p = b.post("/ui/plans/broken/run", &[("csrf", &token)], &[]);
    assert_eq!(p.status, 303, "{}", p.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let jobs = srv.get("/api/jobs", &admin);
        let done = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["state"] != "queued" && j["state"] != "running")
            .count();
        if done == 2 {
            assert!(
                jobs.as_array()
                    .unwrap()
                    .iter()
                    .all(|j| j["requested_by"] == "hands"),
                "{jobs}"
            );
            break b.get("/").body;
        }
        assert!(Instant::now() < deadline, "{jobs}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let failing = page.find("data-plan=\"broken\"").unwrap();
    let fine = page.find("data-plan=\"files\"").unwrap();
    assert!(failing < fine, "failing plans first");
    assert!(
        page[failing..fine].contains("data-health=\"red\""),
        "{page}"
    );
    assert!(page[fine..].contains("data-health=\"ok\""), "{page}");
    let header_csrf = csrf(&page);
    let api = b.post(
        "/api/plans/files/run",
        &[],
        &[("X-CSRF-Token", &header_csrf)],
    );
    assert_eq!(api.status, 202, "{}", api.body);

    // Revoking the operator's token ends its session at once.
    let (s, _) = srv.call("DELETE", "/api/tokens/hands", Some(&admin), None);
    assert_eq!(s, 204);
    assert_eq!(b.get("/").location.as_deref(), Some("/login"));
    assert_eq!(b.get("/api/jobs").status, 401);

    // Signing out ends the viewer's.
    let token = csrf(&viewer_b.get("/").body);
    let p = viewer_b.post("/logout", &[("csrf", &token)], &[]);
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/login")));
    assert!(p.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(viewer_b.get("/").location.as_deref(), Some("/login"));

    // The audit log names the sessions' tokens.
    let audit = srv.get("/api/audit?limit=1000", &admin);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["route"] == "/ui/plans/{name}/run"
                && e["token"] == "hands"
                && e["status"] == 303),
        "{audit}"
    );
    let (code, log) = srv.stop();
    assert_eq!(code, Some(0), "{log}");
    for secret in [&viewer, &op, &admin] {
        assert!(!log.contains(secret.as_str()));
    }
}

/// Every `href` on `page` that starts with `prefix`, as written (HTML-escaped `&amp;`
/// turned back into `&`).
fn links(page: &str, prefix: &str) -> Vec<String> {
    page.match_indices(&format!("href=\"{prefix}"))
        .map(|(at, _)| {
            let rest = &page[at + 6..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

#[test]
fn dashboard_browses_and_downloads_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.init();
    let data = env.path("data");
    let raw = |b: &[u8]| data.join(std::ffi::OsStr::from_bytes(b));
    std::fs::create_dir_all(raw(b"d\xe9")).unwrap();
    std::fs::write(raw(b"x\xff"), "ff\n").unwrap();
    std::fs::write(raw(b"x\xfe"), "fe\n").unwrap();
    std::fs::write(raw(b"d\xe9/in"), "in\n").unwrap();
    env.snapshot(&[&data]);
    let id = env.json(&["snapshots"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    config(
        &env,
        &format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n",
            env.repo().display()
        ),
    );
    let viewer = token(&env, "eyes", "viewer");
    let srv = Server::start(&env, &[]);
    let mut b = Browser::new(&srv.base);
    b.sign_in(&viewer);

    // The directory's page shows the two names apart, each with its own download link
    // (the path percent-encoded as bytes), and each link gives that file's bytes.
    let enc = |p: &std::path::Path| enc_bytes(p.as_os_str().as_bytes());
    let page = b.get(&format!("/snapshots/{id}?path={}", enc(&data)));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("x\\xff") && page.body.contains("x\\xfe"),
        "{}",
        page.body
    );
    let files = links(&page.body, &format!("/snapshots/{id}/file?"));
    assert_eq!(files.len(), 2, "{}", page.body);
    let mut got: Vec<String> = files.iter().map(|l| b.get(l).body).collect();
    got.sort();
    assert_eq!(got, ["fe\n", "ff\n"]);

    // Into the directory whose name is not UTF-8, and its file.
    let dirs = links(&page.body, &format!("/snapshots/{id}?path="));
    let into = dirs
        .iter()
        .find(|l| l.ends_with("%E9"))
        .unwrap_or_else(|| panic!("a link into d\\xe9 in {dirs:?}"));
    let inner = b.get(into);
    assert_eq!(inner.status, 200, "{}", inner.body);
    let files = links(&inner.body, &format!("/snapshots/{id}/file?"));
    assert_eq!(files.len(), 1, "{}", inner.body);
    assert_eq!(b.get(&files[0]).body, "in\n");
    // A path that is not there is an error page, not another file.
    let missing = b.get(&format!(
        "/snapshots/{id}/file?path={}",
        enc(&raw(b"x\xfd"))
    ));
    assert_eq!(missing.status, 404, "{}", missing.body);
}

/// `bytes` percent-encoded for a query, every byte outside a few safe ASCII ones escaped.
fn enc_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&c| match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}

/// The hidden fields of `page`'s forms, as (name, value) with HTML escapes undone.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let unesc = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    page.match_indices("<input type=\"hidden\" name=\"")
        .map(|(at, m)| {
            let rest = &page[at + m.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            let v = &rest[rest.find("value=\"").unwrap() + 7..];
            (unesc(name), unesc(&v[..v.find('"').unwrap()]))
        })
        .collect()
}

#[test]
fn dashboard_and_api_restore_paths_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.init();
    let data = env.path("data");
    let raw = |b: &[u8]| data.join(std::ffi::OsStr::from_bytes(b));
    std::fs::create_dir_all(raw(b"d\xe9/sub")).unwrap();
    std::fs::write(raw(b"d\xe9/in"), "in\n").unwrap();
    std::fs::write(raw(b"d\xe9/sub/deep"), "deep\n").unwrap();
    std::fs::write(raw(b"x\xff"), "ff\n").unwrap();
    std::fs::write(raw(b"x\xfe"), "fe\n").unwrap();
    env.snapshot(&[&data]);
    let id = env.json(&["snapshots"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let restores = env.path("restores");
    std::fs::create_dir_all(&restores).unwrap();
    config(
        &env,
        &format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n\n\
[service]\nrestore-roots = [\"{}\"]\n",
            env.repo().display(),
            restores.display()
        ),
    );
    let op = token(&env, "hands", "operator");
    let srv = Server::start(&env, &[]);
    let mut b = Browser::new(&srv.base);
    b.sign_in(&op);
    let inside = |t: &std::path::Path, p: &std::path::Path| t.join(p.strip_prefix("/").unwrap());

    // The page of the directory d\xe9 offers to restore it; the link carries its exact
    // bytes as hex, the form keeps them, and the preview's confirmation posts them.
    let dir = raw(b"d\xe9");
    let dir_hex = hex::encode(dir.as_os_str().as_bytes());
    let page = b.get(&format!(
        "/snapshots/{id}?path={}",
        enc_bytes(dir.as_os_str().as_bytes())
    ));
    assert_eq!(page.status, 200, "{}", page.body);
    let link = links(&page.body, "/restore?")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no restore link in {}", page.body));
    assert!(link.contains(&format!("include_hex={dir_hex}")), "{link}");
    let form = b.get(&link);
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("d\\xe9"), "{}", form.body);
    assert!(
        hidden_fields(&form.body).contains(&("include_hex".into(), dir_hex.clone())),
        "{}",
        form.body
    );
    let t1 = restores.join("t1");
    let preview = b.get(&format!(
        "/restore/preview?mode=files&snapshot={id}&include_hex={dir_hex}&target={}&conflict=overwrite",
        enc_bytes(t1.as_os_str().as_bytes())
    ));
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(!t1.exists(), "a preview writes nothing");
    let confirm = &preview.body[preview
        .body
        .find("action=\"/ui/restore\"")
        .unwrap_or_else(|| panic!("no restore button in {}", preview.body))..];
    let fields = hidden_fields(&confirm[..confirm.find("</form>").unwrap()]);
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert!(
        form.contains(&("include_hex", dir_hex.as_str())),
        "{fields:?}"
    );
    let started = b.post("/ui/restore", &form, &[]);
    let job = started
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/jobs/"))
        .unwrap_or_else(|| panic!("{fields:?}: {} {}", started.status, started.body))
        .to_string();
    let done = srv.wait_job(&job, &op);
    assert_eq!(done["state"], "ok", "{done}");
    let out = inside(&t1, &dir);
    assert_eq!(std::fs::read_to_string(out.join("in")).unwrap(), "in\n");
    assert_eq!(
        std::fs::read_to_string(out.join("sub/deep")).unwrap(),
        "deep\n"
    );
    assert!(
        !inside(&t1, &raw(b"x\xff")).exists(),
        "only what was asked for"
    );
    assert!(
        !inside(&t1, &raw(b"x\xfe")).exists(),
        "only what was asked for"
    );

    // The API takes the same exact paths, and refuses what is not hex.
    let t2 = restores.join("t2");
    let file = raw(b"x\xff");
    let body = serde_json::json!({
        "snapshot": id,
        "target": t2,
        "include_hex": hex::encode(file.as_os_str().as_bytes()),
    });
    let (s, job) = srv.call("POST", "/api/recovery/restore", Some(&op), Some(&body));
    assert_eq!(s, 202, "{job}");
    let done = srv.wait_job(job["id"].as_str().unwrap(), &op);
    assert_eq!(done["state"], "ok", "{done}");
    assert_eq!(std::fs::read_to_string(inside(&t2, &file)).unwrap(), "ff\n");
    assert!(
        !inside(&t2, &raw(b"x\xfe")).exists(),
        "x\\xfe is another file"
    );
    assert!(!inside(&t2, &dir).exists());
    let bad = serde_json::json!({"snapshot": id, "target": restores.join("t3"), "include_hex": "d\u{e9}"});
    let (s, v) = srv.call("POST", "/api/recovery/restore", Some(&op), Some(&bad));
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("include_hex"), "{v}");
}
