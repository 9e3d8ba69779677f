//! Hostile trees: entries swapped while a snapshot or a restore runs, symlinks planted in
//! a restore target, hard links onto foreign files, sockets, and what the repository's
//! own files look like to other users.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{random_bytes, Env};

/// Runs `f` in a loop on another thread until the returned guard is dropped.
struct Racer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Racer {
    fn start(mut f: impl FnMut() + Send + 'static) -> Racer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                f();
                n += 1;
            }
            n
        });
        Racer {
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map_or(0, |h| h.join().unwrap())
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Every regular file below `dir` with its bytes.
fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let md = fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                out.push((e.path(), fs::read(e.path()).unwrap_or_default()));
            }
        }
    }
    out
}

#[test]
fn a_directory_swapped_for_a_symlink_during_restore_never_redirects_a_write() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..300 {
        fs::write(
            src.join("d").join(format!("f{i:03}")),
            random_bytes(20_000, 2 * i + 1),
        )
        .unwrap();
    }
    env.snapshot(&[&src]);
    let outside = env.path("outside");
    for round in 0..5 {
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("f000"), b"not yours").unwrap();
        fs::set_permissions(outside.join("f000"), fs::Permissions::from_mode(0o640)).unwrap();
        let target = env.path(&format!("t{round}"));
        let d = target.join(src.strip_prefix("/").unwrap()).join("d");
        let (d2, out2) = (d.clone(), outside.clone());
        // Keeps replacing the restored directory with a symlink to `outside`.
        let racer = Racer::start(move || {
            if fs::symlink_metadata(&d2).is_ok_and(|m| m.is_dir()) {
                let aside = d2.with_extension(format!("real{}", rand_suffix()));
                if fs::rename(&d2, &aside).is_ok() {
                    let _ = std::os::unix::fs::symlink(&out2, &d2);
                }
            }
            std::thread::yield_now();
        });
        let _ = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
        racer.stop();
        let found = files_below(&outside);
        assert_eq!(
            found.len(),
            1,
            "round {round}: written outside the target: {found:?}"
        );
        assert_eq!(found[0].1, b"not yours");
        let md = fs::metadata(outside.join("f000")).unwrap();
        assert_eq!(
            md.mode() & 0o777,
            0o640,
            "round {round}: mode changed through the link"
        );
        fs::remove_dir_all(&outside).unwrap();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[test]
fn a_file_swapped_for_a_symlink_or_fifo_during_snapshot_is_never_read_through() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let secret = env.path("secret");
    fs::write(&secret, b"SECRET root-only content").unwrap();
    for i in 0..200 {
        fs::write(src.join(format!("f{i:03}")), format!("user data {i}")).unwrap();
    }
    let (src2, secret2) = (src.clone(), secret.clone());
    let mut n = 0u64;
    // Every file is, in turn, a regular file, a symlink to the secret, and a FIFO.
    let racer = Racer::start(move || {
        let f = src2.join(format!("f{:03}", n % 200));
        let tmp = src2.join(format!(".swap{}", n % 3));
        let _ = fs::remove_file(&tmp);
        let made = match n % 3 {
            0 => std::os::unix::fs::symlink(&secret2, &tmp),
            1 => nix::unistd::mkfifo(&tmp, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .map_err(std::io::Error::from),
            _ => fs::write(&tmp, format!("user data {n}")),
        };
        if made.is_ok() {
            let _ = fs::rename(&tmp, &f);
        }
        n += 1;
    });
    for round in 0..10 {
        let started = Instant::now();
        let mut child = env
            .cmd(&["snapshot", "--force-full", src.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "round {round}: the snapshot hangs (opened a FIFO?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    racer.stop();
    // Nothing the snapshots stored as a regular file holds the secret.
    for snap in env.json(&["snapshots"]).as_array().unwrap() {
        let id = snap["id"].as_str().unwrap();
        let target = env.path(&format!("r-{}", &id[..8]));
        let _ = env.run(&["restore", id, "--target", target.to_str().unwrap()]);
        for (p, bytes) in files_below(&target) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains("SECRET"),
                "{}: the secret was stored as this file's content",
                p.display()
            );
        }
    }
}

#[test]
fn a_file_written_to_while_read_is_reported() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let big = src.join("growing.log");
    crate::common::write_big_file(&big, 64 << 20, 5);
    let b2 = big.clone();
    // At most 4 KiB a millisecond: the file keeps changing while it is read, and the disk
    // cannot fill however slow the machine.
    let racer = Racer::start(move || {
        use std::io::Write;
        if let Ok(mut f) = fs::OpenOptions::new().append(true).open(&b2) {
            let _ = f.write_all(&[b'x'; 4096]);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    });
    let snap = env.snapshot(&[&src]);
    racer.stop();
    let changed = snap["summary"]["changed_during_read"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{snap}");
    assert!(changed[0].as_str().unwrap().ends_with("growing.log"));
}

#[test]
fn hard_links_are_never_made_to_a_file_the_restore_kept() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"snapshot content").unwrap();
    fs::hard_link(src.join("a"), src.join("b")).unwrap();
    fs::hard_link(src.join("a"), src.join("c")).unwrap();
    env.snapshot(&[&src]);
    for policy in ["skip", "rename", "if-newer"] {
        let target = env.path(&format!("t-{policy}"));
        let dir = target.join(src.strip_prefix("/").unwrap());
        fs::create_dir_all(&dir).unwrap();
        // The user's own, newer `a`.
        fs::write(dir.join("a"), b"the user's own file").unwrap();
        env.ok(&[
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--conflict",
            policy,
        ]);
        assert_eq!(
            fs::read(dir.join("a")).unwrap(),
            b"the user's own file",
            "{policy}"
        );
        for other in ["b", "c"] {
            assert_eq!(
                fs::read(dir.join(other)).unwrap(),
                b"snapshot content",
                "{policy}: {other} got the kept file's content"
            );
            assert_ne!(
                fs::metadata(dir.join(other)).unwrap().ino(),
                fs::metadata(dir.join("a")).unwrap().ino(),
                "{policy}: {other} is a link to the user's file"
            );
        }
        // b and c are still one file.
        assert_eq!(
            fs::metadata(dir.join("b")).unwrap().ino(),
            fs::metadata(dir.join("c")).unwrap().ino(),
            "{policy}"
        );
        if policy == "rename" {
            assert_eq!(
                fs::read(dir.join("a.restored")).unwrap(),
                b"snapshot content"
            );
        }
    }
}

#[test]
fn a_symlink_where_the_snapshot_has_a_directory_is_not_looked_through() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"content").unwrap();
    env.snapshot(&[&src]);
    // Outside the target, an identical file (same content and mtime) behind a symlink
    // planted where the snapshot has directory `d`.
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::copy(src.join("d/f"), outside.join("f")).unwrap();
    let mtime =
        filetime::FileTime::from_last_modification_time(&fs::metadata(src.join("d/f")).unwrap());
    filetime::set_file_mtime(outside.join("f"), mtime).unwrap();
    let target = env.path("t");
    let dir = target.join(src.strip_prefix("/").unwrap());
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("d")).unwrap();
    let r = env.json(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(r["up_to_date"], 0, "{r}");
    assert!(fs::symlink_metadata(dir.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(dir.join("d/f")).unwrap(), b"content");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn sockets_are_reported_and_the_snapshot_is_complete_otherwise() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("agent.sock")).unwrap();
    let out = env
        .cmd(&["snapshot", "--json", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = snap["summary"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{snap}");
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("agent.sock"));
    assert!(skipped[0]["error"].as_str().unwrap().contains("socket"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent.sock"));
}

#[test]
fn repository_files_are_private_and_init_refuses_foreign_directories() {
    let env = Env::new();
    // A directory holding something else is not made a repository.
    let busy = env.path("busy");
    fs::create_dir_all(&busy).unwrap();
    fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let o = env
        .cmd(&["init"])
        .env("REPO_REPOSITORY", &busy)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not empty") && err.contains("notes.txt"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&busy).unwrap().count(), 1);

    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    env.snapshot(&[&src]);
    let repo = env.repo();
    assert_eq!(fs::metadata(&repo).unwrap().mode() & 0o777, 0o700);
    let mut stack = vec![repo.clone()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let md = e.metadata().unwrap();
            let mode = md.mode() & 0o777;
            if md.is_dir() {
                assert_eq!(mode, 0o700, "{}", e.path().display());
                stack.push(e.path());
            } else {
                assert_eq!(mode, 0o600, "{}", e.path().display());
                files += 1;
            }
        }
    }
    assert!(files >= 5);
}

/// The directory `depth` levels of `d` below `root`, opened one level at a time (the
/// only way to reach paths longer than PATH_MAX); `create` makes missing levels.
fn open_deep(root: &Path, depth: usize, create: bool) -> rustix::fd::OwnedFd {
    use rustix::fs::{mkdirat, openat, Mode, OFlags};
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut fd = openat(rustix::fs::CWD, root, flags, Mode::empty()).expect("open root");
    for _ in 0..depth {
        if create {
            mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
        }
        fd = openat(&fd, "d", flags, Mode::empty()).expect("openat");
    }
    fd
}

/// Writes `data` to `name` in the directory `dir`.
fn write_at(dir: &rustix::fd::OwnedFd, name: &str, data: &[u8]) {
    use rustix::fs::{openat, Mode, OFlags};
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
    let fd = openat(dir, name, flags, Mode::from_raw_mode(0o644)).expect("create");
    let mut f = fs::File::from(fd);
    std::io::Write::write_all(&mut f, data).expect("write");
}

/// Reads `name` in the directory `dir`.
fn read_at(dir: &rustix::fd::OwnedFd, name: &str) -> Vec<u8> {
    use rustix::fs::{openat, Mode, OFlags};
    let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).expect("open");
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut fs::File::from(fd), &mut data).expect("read");
    data
}

#[test]
fn directories_nested_far_beyond_path_max_back_up_diff_check_restore_and_copy() {
    const DEPTH: usize = 5000;
    let env = Env::new();
    env.init();
    let src = env.path("deep");
    fs::create_dir(&src).unwrap();
    write_at(&open_deep(&src, DEPTH, true), "leaf", b"first");
    let first = env.snapshot(&[&src]);
    write_at(&open_deep(&src, DEPTH, false), "leaf", b"second");
    let second = env.snapshot(&[&src]);
    let (a, b) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );

    let diff = env.json(&["diff", a, b]);
    let changes = diff["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{diff}");
    let path = changes[0]["path"].as_str().unwrap();
    assert!(path.ends_with("/d/d/leaf"), "{path}");
    assert_eq!(path.split('/').filter(|c| *c == "d").count(), DEPTH);

    let check = env.json(&["check"]);
    assert_eq!(check["findings"], serde_json::json!([]), "{check}");
    let listed = env.ok(&["ls", b]);
    let above = src.components().count() - 1;
    assert_eq!(
        listed.lines().count(),
        above + DEPTH + 1,
        "the way down, every level, the leaf"
    );

    let out = env.path("out");
    env.ok(&["restore", a, "--target", out.to_str().unwrap()]);
    let restored = out.join(src.strip_prefix("/").unwrap());
    assert_eq!(
        read_at(&open_deep(&restored, DEPTH, false), "leaf"),
        b"first"
    );

    let dst = env.path("copy");
    let mut c = env.cmd(&["init"]);
    c.env("REPO_REPOSITORY", &dst);
    assert!(c.status().unwrap().success());
    let mut c = env.cmd(&["copy", "--from", env.repo().to_str().unwrap()]);
    c.env("REPO_REPOSITORY", &dst);
    assert!(c.status().unwrap().success());
    let mut c = env.cmd(&["check", "--json"]);
    c.env("REPO_REPOSITORY", &dst);
    let copied: serde_json::Value = serde_json::from_slice(&c.output().unwrap().stdout).unwrap();
    assert_eq!(copied["findings"], serde_json::json!([]), "{copied}");
    assert_eq!(copied["snapshots"], 2, "{copied}");
}

/// A file is read no further than the size listed for it; one that holds more (a `/proc`
/// file lists 0 bytes) is reported as changed while read, not silently cut.
#[test]
fn a_file_holding_more_than_its_listed_size_is_reported() {
    let env = Env::new();
    env.init();
    let snap = env.snapshot(&[std::path::Path::new("/proc/version")]);
    let changed = snap["summary"]["changed_during_read"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{snap}");
    assert_eq!(changed[0].as_str().unwrap(), "/proc/version");
}
