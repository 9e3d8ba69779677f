//! SFTP repositories against a real OpenSSH server (scripts/object-stores starts a private
//! sshd and exports REPO_TEST_SFTP_BIN, a directory whose `ssh` is the system client with a
//! private configuration: host alias, key and known_hosts, so ~/.ssh is never touched).

use std::ffi::OsString;
use std::process::Command;

use repo::backend::conformance;
use repo::backend::target::{ObjectOptions, Target};

use crate::common::{assert_same_tree, ok_output as ok, random_bytes, write_big_file, Env};

struct Sftp {
    /// PATH with the configured `ssh` first.
    path: OsString,
    host: String,
    /// A directory on the server (the same machine).
    dir: std::path::PathBuf,
}

fn server() -> Option<Sftp> {
    let var = crate::common::service;
    let (Some(bin), Some(host), Some(dir)) = (
        var("REPO_TEST_SFTP_BIN"),
        var("REPO_TEST_SFTP_HOST"),
        var("REPO_TEST_SFTP_DIR"),
    ) else {
        return None;
    };
    let mut path = OsString::from(bin);
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    Some(Sftp {
        path,
        host,
        dir: dir.into(),
    })
}

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{t:08x}", std::process::id())
}

#[test]
fn conformance_on_sftp() {
    let Some(s) = server() else { return };
    // The backend runs `ssh` from PATH; the configured one only knows the test alias.
    std::env::set_var("PATH", &s.path);
    let dir = s.dir.join(unique("conf"));
    let location = format!("sftp:{}:{}", s.host, dir.display());
    let target = Target::parse(&location).unwrap().expect("sftp location");
    let b = repo::backend::object::open(&location, &target, &ObjectOptions::default())
        .expect("backend");
    conformance::check(b.as_ref());
    conformance::check_scale(b.as_ref(), 12 << 20, 300);
    // Objects are renamed into place: no in-flight names are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn sftp_cmd(env: &Env, s: &Sftp, repo: &str, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env("PATH", &s.path).env("REPO_REPOSITORY", repo);
    c
}

#[test]
fn every_command_works_on_sftp() {
    let Some(s) = server() else { return };
    let env = Env::new();
    let root = s.dir.join(unique("e2e"));
    let repo = format!("sftp:{}:{}", s.host, root.display());
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    for i in 0..30u64 {
        std::fs::write(
            src.join("docs").join(format!("f{i}.txt")),
            random_bytes(800 + (i as usize) * 900, 2 * i + 1),
        )
        .unwrap();
    }
    write_big_file(&src.join("big.bin"), 20 << 20, 41);
    let p = src.to_str().unwrap();
    ok(sftp_cmd(&env, &s, &repo, &["init"]));
    // Only its owner can enter the repository, and the key file is private.
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&root), 0o700);
    for k in std::fs::read_dir(root.join("keys")).unwrap().flatten() {
        assert_eq!(mode(&k.path()), 0o600, "{}", k.path().display());
    }
    assert_eq!(mode(&root.join("config")), 0o600);
    ok(sftp_cmd(&env, &s, &repo, &["snapshot", p]));
    std::fs::write(src.join("docs/f2.txt"), b"edited").unwrap();
    let second = ok(sftp_cmd(&env, &s, &repo, &["snapshot", p, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert!(
        v["summary"]["bytes_added"].as_u64().unwrap() < 1 << 20,
        "{v}"
    );
    let target = env.path("restored");
    ok(sftp_cmd(
        &env,
        &s,
        &repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    ok(sftp_cmd(&env, &s, &repo, &["check", "--read-data"]));
    ok(sftp_cmd(
        &env,
        &s,
        &repo,
        &["forget", "--keep-last", "1", "--prune"],
    ));
    ok(sftp_cmd(&env, &s, &repo, &["check", "--read-data"]));
    let snaps = ok(sftp_cmd(&env, &s, &repo, &["snapshots", "--json"]));
    let snaps: serde_json::Value = serde_json::from_str(&snaps).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
}

#[test]
fn unknown_host_key_is_refused_clearly() {
    let Some(s) = server() else { return };
    // The same server by address: the private configuration vouches only for the alias's
    // host key (other hosts get an empty known_hosts), so strict checking, the default,
    // refuses before logging in.
    let Some(port) = crate::common::service("REPO_TEST_SFTP_PORT") else {
        return;
    };
    let env = Env::new();
    let repo = format!("sftp:127.0.0.1:{port}:{}", s.dir.join("never").display());
    let mut c = sftp_cmd(&env, &s, &repo, &["init", "--retries", "0"]);
    let out = c.output().expect("run repo");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storage") && err.contains("Host key verification failed"),
        "{err}"
    );
    assert!(!s.dir.join("never").exists());
}
