//! Bad input gives one clear line and a non-zero exit, and writes nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{is_root, Env};

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn wrong_password_is_a_clear_error() {
    let env = Env::new();
    env.init();
    let out = env
        .cmd(&["snapshots"])
        .env("REPO_PASSWORD", "not it")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(12),
        "as restic: 12 is a wrong password"
    );
    let err = stderr_of(&out);
    assert!(err.contains("wrong password"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn missing_repository_and_missing_password() {
    let env = Env::new();
    let out = env.run(&["snapshots"]);
    assert_eq!(
        out.status.code(),
        Some(10),
        "as restic: 10 is no repository"
    );
    assert!(
        stderr_of(&out).contains("no repository at"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        !env.repo().exists(),
        "a failed command must not create the repository"
    );

    env.init();
    let out = env
        .cmd(&["snapshots"])
        .env_remove("REPO_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("no password"),
        "{}",
        stderr_of(&out)
    );

    let again = env.run(&["init"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr_of(&again).contains("already exists"));
}

#[test]
fn bad_arguments_fail_without_writing() {
    let env = Env::new();
    env.init();
    let out = env.run(&["snapshot", env.path("does-not-exist").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("does-not-exist"),
        "{}",
        stderr_of(&out)
    );
    assert!(env.json(&["snapshots"]).as_array().unwrap().is_empty());

    let out = env.run(&[
        "restore",
        "deadbeef",
        "--target",
        env.path("t").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("no snapshot matches"),
        "{}",
        stderr_of(&out)
    );
    let out = env.run(&[
        "restore",
        "latest",
        "--target",
        env.path("t").to_str().unwrap(),
    ]);
    assert!(
        stderr_of(&out).contains("no snapshots yet"),
        "{}",
        stderr_of(&out)
    );
    let out = env.run(&["ls", "not-hex!"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.run(&["init", "--repo", "b2:bucket/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("not supported"),
        "{}",
        stderr_of(&out)
    );
    let out = env.run(&["init", "--repo", "s3:"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("no bucket"), "{}", stderr_of(&out));
    let out = env.run(&["init", "--repo", "sftp:host-without-path"]);
    assert!(
        stderr_of(&out).contains("sftp:[user@]host"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn unreadable_files_are_skipped_and_reported() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("locked-dir")).unwrap();
    fs::write(src.join("readable"), b"fine").unwrap();
    fs::write(src.join("unreadable"), b"secret").unwrap();
    fs::write(src.join("locked-dir/inside"), b"hidden").unwrap();
    fs::set_permissions(src.join("unreadable"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(src.join("locked-dir"), fs::Permissions::from_mode(0o000)).unwrap();
    env.init();
    let mut cmd = env.cmd(&["snapshot", "--json", src.to_str().unwrap()]);
    if is_root() {
        // Root reads everything; run as nobody to meet real permission errors.
        let tmp = env.dir.path();
        fs::set_permissions(tmp, fs::Permissions::from_mode(0o777)).unwrap();
        let walk = ["repo", "home", "src"];
        for d in walk {
            let p = tmp.join(d);
            fs::create_dir_all(&p).unwrap();
            std::process::Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(&p)
                .status()
                .unwrap();
        }
        fs::set_permissions(src.join("unreadable"), fs::Permissions::from_mode(0o000)).unwrap();
        // The test binary may sit under a directory nobody cannot enter; run a copy.
        let prog = tmp.join("repo-bin");
        fs::copy(cmd.get_program(), &prog).unwrap();
        fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let mut sudo = std::process::Command::new("setpriv");
        sudo.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(prog)
            .args(args);
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                sudo.env(k, v);
            }
        }
        cmd = sudo;
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("unreadable"), "{err}");
    assert!(err.contains("locked-dir"), "{err}");
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = snap["summary"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{snap}");
    assert_eq!(snap["summary"]["files_new"], 1);
    fs::set_permissions(src.join("locked-dir"), fs::Permissions::from_mode(0o755)).unwrap();
}
