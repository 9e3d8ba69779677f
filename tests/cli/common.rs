//! Shared helpers: an isolated environment per test and a tree comparer.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An isolated HOME, XDG dirs, cache and repository for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("repo-test-")
            .tempdir()
            .expect("tempdir");
        Env { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }

    /// The `repo` binary with this environment and the repository at `repo()`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_repo"));
        let home = self.path("home");
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("REPO_REPOSITORY", self.repo())
            .env("REPO_PASSWORD", "correct horse battery staple");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run repo")
    }

    /// Runs and asserts exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "repo {:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            args,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs and parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let s = self.ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{s}"))
    }

    pub fn init(&self) {
        self.ok(&["init"]);
    }

    /// The repository at `repo` opened through the library (with this environment's
    /// password), for what a test must ask of it directly.
    pub fn library(&self, repo: &Path) -> repo::repository::Repository {
        repo::repository::Repository::open(
            std::sync::Arc::new(repo::backend::local::LocalBackend::new(repo)),
            b"correct horse battery staple",
            &self.path("lib-cache"),
        )
        .unwrap()
    }

    /// Takes a snapshot and returns its JSON object.
    pub fn snapshot(&self, paths: &[&Path]) -> serde_json::Value {
        let mut a: Vec<&str> = vec!["snapshot"];
        for p in paths {
            a.push(p.to_str().expect("utf-8 path"));
        }
        self.json(&a)
    }
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a large pseudo-random file in blocks, without holding it in memory.
pub fn write_big_file(path: &Path, len: usize, seed: u64) {
    let mut f = fs::File::create(path).expect("create");
    let block = 1 << 20;
    let mut done = 0;
    let mut i = 0;
    while done < len {
        let n = block.min(len - done);
        f.write_all(&random_bytes(n, seed.wrapping_add(i)))
            .expect("write");
        done += n;
        i += 1;
    }
}

/// Asserts two trees are identical in content and metadata; hard links must be preserved.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let mut links_a: HashMap<u64, PathBuf> = HashMap::new();
    let mut links_b: HashMap<u64, PathBuf> = HashMap::new();
    compare(a, b, Path::new(""), &mut links_a, &mut links_b);
}

fn compare(
    a: &Path,
    b: &Path,
    rel: &Path,
    la: &mut HashMap<u64, PathBuf>,
    lb: &mut HashMap<u64, PathBuf>,
) {
    let ma = fs::symlink_metadata(a).unwrap_or_else(|e| panic!("{}: {e}", a.display()));
    let mb =
        fs::symlink_metadata(b).unwrap_or_else(|e| panic!("restored {} missing: {e}", b.display()));
    let ft = ma.file_type();
    assert_eq!(ft, mb.file_type(), "type of {}", rel.display());
    if !ft.is_symlink() {
        assert_eq!(
            ma.mode() & 0o7777,
            mb.mode() & 0o7777,
            "mode of {}",
            rel.display()
        );
    }
    assert_eq!(
        (ma.uid(), ma.gid()),
        (mb.uid(), mb.gid()),
        "owner of {}",
        rel.display()
    );
    assert_eq!(
        (ma.mtime(), ma.mtime_nsec()),
        (mb.mtime(), mb.mtime_nsec()),
        "mtime of {}",
        rel.display()
    );
    if ft.is_symlink() {
        assert_eq!(
            fs::read_link(a).unwrap(),
            fs::read_link(b).unwrap(),
            "target of {}",
            rel.display()
        );
    } else if ft.is_file() {
        assert_eq!(ma.len(), mb.len(), "size of {}", rel.display());
        assert!(same_content(a, b), "content of {}", rel.display());
        if ma.nlink() > 1 {
            // Members of one hard-link group in the source must share an inode after restore.
            let first_a = la
                .entry(ma.ino())
                .or_insert_with(|| rel.to_path_buf())
                .clone();
            let first_b = lb
                .entry(mb.ino())
                .or_insert_with(|| rel.to_path_buf())
                .clone();
            assert_eq!(first_a, first_b, "hard link group of {}", rel.display());
        }
    } else if ft.is_dir() {
        let names = |p: &Path| {
            let mut v: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let (na, nb) = (names(a), names(b));
        assert_eq!(na, nb, "entries of {}", rel.display());
        for n in na {
            compare(&a.join(&n), &b.join(&n), &rel.join(&n), la, lb);
        }
    }
}

fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
    fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        n
    }
}

/// Asserts a run was stopped by `REPO_FAILPOINT` at `point` (SIGABRT there, nothing else):
/// a crash test whose crash did not happen proves nothing.
pub fn assert_aborted_at(o: &Output, point: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(6),
        "{point}: not aborted at the failpoint ({:?}): {err}",
        o.status
    );
    assert!(
        err.contains(&format!("failpoint {point}: aborting")),
        "{point}: failpoint not reached: {err}"
    );
}

/// Whether we run as root (some tests need or change behaviour with it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs a prepared command and returns its stdout; fails the test with both streams.
pub fn ok_output(mut c: Command) -> String {
    let out = c.output().expect("run repo");
    assert!(
        out.status.success(),
        "{c:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether every test server (and every environment a test needs, such as root for a
/// tmpfs) must be there: under `REPO_TEST_REQUIRE_SERVICES` (the README's test command) and
/// in any CI (`CI` set, as CI services do). Then nothing may be skipped: a missing server
/// fails the run.
pub fn services_required() -> bool {
    let set = |var: &str| {
        std::env::var(var)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("REPO_TEST_REQUIRE_SERVICES") || set("CI")
}

/// A test server's setting (scripts/test starts the servers and exports them). Missing:
/// a failure when [`services_required`], else `None` with a printed SKIPPED line (one
/// test run by hand without servers).
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if services_required() => panic!(
            "{var} is not set, but the test servers are required (CI or \
             REPO_TEST_REQUIRE_SERVICES): the test server did not start"
        ),
        _ => {
            eprintln!("SKIPPED: {var} is not set (scripts/test starts the test servers)");
            None
        }
    }
}

/// The shared test MongoDB server (scripts/test starts it), or None with the reason printed.
pub fn mongo_server() -> Option<(String, mongodb::sync::Client)> {
    let uri = patient(&service("REPO_TEST_MONGODB_URI")?);
    let client = mongodb::sync::Client::with_uri_str(&uri).expect("client");
    Some((uri, client))
}

/// `uri` with a 60 s connect timeout. The test server answers in Python; on a loaded
/// 2-core machine it can miss the driver's 10 s heartbeat, and the driver then cancels
/// every operation in flight (`ConnectionPoolCleared`): for the harness and for `repo`.
pub fn patient(uri: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}connectTimeoutMS=60000")
}

/// A database name no other test (or run) uses.
pub fn unique_db(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}", std::process::id() ^ t)
}

/// Where a failpoint waits until the test releases it (`REPO_FAILPOINT=<point>:wait=…`).
pub struct Gate(tempfile::TempDir);

impl Gate {
    pub fn new() -> Gate {
        Gate(tempfile::tempdir().expect("gate dir"))
    }

    /// The `REPO_FAILPOINT` value that holds a process at `point` until [`Gate::release`].
    pub fn failpoint(&self, point: &str) -> String {
        format!("{point}:wait={}", self.0.path().join("go").display())
    }

    pub fn release(&self) {
        fs::write(self.0.path().join("go"), b"").expect("release the failpoint");
    }
}

/// A `repo` process held at a failpoint (`REPO_FAILPOINT=<point>:wait=<gate>`) until the
/// test releases it, or any process watched until it printed a line.
pub struct Paused {
    child: std::process::Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
    gate: Gate,
}

impl Paused {
    /// Starts `c` and returns once it reached `point`, where it stays until
    /// [`Paused::release`] or [`Paused::finish`].
    pub fn start(mut c: Command, point: &str) -> Paused {
        let gate = Gate::new();
        // Added to the points the command already names.
        let named = c
            .get_envs()
            .find(|(k, _)| *k == "REPO_FAILPOINT")
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()));
        let mine = gate.failpoint(point);
        c.env(
            "REPO_FAILPOINT",
            named.map_or(mine.clone(), |n| format!("{n},{mine}")),
        );
        Self::watch_with(c, &format!("failpoint {point}: pausing"), gate)
    }

    /// Starts `c` and returns once its stderr holds `want`.
    pub fn watch(c: Command, want: &str) -> Paused {
        Self::watch_with(c, want, Gate::new())
    }

    fn watch_with(mut c: Command, want: &str, gate: Gate) -> Paused {
        use std::io::Read;
        use std::process::Stdio;
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn repo");
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let started = std::time::Instant::now();
        loop {
            if String::from_utf8_lossy(&stderr.lock().unwrap()).contains(want) {
                break;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "the process ended ({st:?}) before printing {want:?}: {}",
                    String::from_utf8_lossy(&stderr.lock().unwrap())
                );
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(180),
                "{want:?} never came"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Paused {
            child,
            stdout,
            stderr,
            reader,
            gate,
        }
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    /// Lets the process go on past its failpoint.
    pub fn release(&self) {
        self.gate.release();
    }

    /// Releases the process and waits for it to end.
    pub fn finish(mut self) -> Output {
        self.release();
        let status = self.child.wait().expect("wait");
        let _ = self.reader.join();
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.lock().unwrap().clone();
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

/// Every object of a local repository (path → size), without locks and temporaries:
/// what a reader must never change.
pub fn objects(repo: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(repo).unwrap().to_string_lossy().into_owned();
            if rel.starts_with("locks") || e.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, md.len());
            }
        }
    }
    out
}

/// A self-signed certificate and key in `dir` (`cert.pem`, `key.pem`) for `san`
/// (`IP:127.0.0.1`, `DNS:localhost`), usable by rustls clients that trust it directly.
pub fn self_signed(dir: &Path, san: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (cert, key)
}

/// A real SMTP server (aiosmtpd, printing each message to its stdout) on a free loopback
/// port. Missing, it fails the test: an email test never passes by doing nothing.
pub fn smtp_sink() -> (std::process::Child, u16) {
    smtp_sink_with(&[])
}

/// [`smtp_sink`] with more aiosmtpd arguments (`--tlscert`, `--smtpscert`, …).
pub fn smtp_sink_with(args: &[&std::ffi::OsStr]) -> (std::process::Child, u16) {
    let aiosmtpd = std::env::var("REPO_TEST_AIOSMTPD")
        .ok()
        .filter(|v| !v.is_empty())
        .expect("REPO_TEST_AIOSMTPD is not set: run the tests with scripts/test, which installs aiosmtpd");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let sink = Command::new(&aiosmtpd)
        .args(["-n", "-l", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("aiosmtpd");
    // Wait until it accepts connections.
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "aiosmtpd did not start");
    (sink, port)
}

/// Inserts `n` documents with awkward BSON (ObjectIds, dates, binary, nested arrays,
/// `i64` extremes, non-ASCII and escaped text) into `DB."odd name.users"`, with a
/// descending index on `when`, and returns them.
pub fn odd_users(client: &mongodb::sync::Client, db: &str, n: i32) -> Vec<mongodb::bson::Document> {
    use mongodb::bson::{doc, Bson, Document};
    let users = client.database(db).collection::<Document>("odd name.users");
    let docs: Vec<Document> = (0..n)
        .map(|i| {
            doc! {"_id": i, "oid": mongodb::bson::oid::ObjectId::new(),
            "when": mongodb::bson::DateTime::from_millis(1_700_000_000_000 + i64::from(i)),
            "bin": Bson::Binary(mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![i as u8; 3] }),
            "nested": {"a": [1, "two", {"three": 3.5}], "i64": i64::MAX - i64::from(i)}, "text": "é\u{1F600}\"\n"}
        })
        .collect();
    users.insert_many(docs.clone()).run().unwrap();
    users
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"when": -1})
                .build(),
        )
        .run()
        .unwrap();
    docs
}

/// The tree id of directory `dir` in snapshot `id` (an id or prefix), asked of the
/// library: what a test compares to show two walks stored the same directory.
pub fn tree_of(env: &Env, id: &str, dir: &Path) -> repo::id::TreeId {
    let r = env.library(&env.repo());
    let snap = r
        .load_snapshot(&r.resolve_snapshot_id(id).unwrap())
        .unwrap();
    let mut tree = snap.tree;
    for part in dir.strip_prefix("/").unwrap().components() {
        let name = part.as_os_str().as_encoded_bytes();
        let t = r.load_tree(&tree).unwrap();
        let node = t.nodes.iter().find(|n| n.name == name);
        tree = node
            .and_then(|n| n.subtree)
            .unwrap_or_else(|| panic!("{} not in snapshot {id}", dir.display()));
    }
    tree
}
