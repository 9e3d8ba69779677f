//! `repo mount`: a real FUSE mount (fusermount3) read through the kernel. Every file equals
//! the source (content, mode, owner, mtime, symlink targets, hard links); one byte from the
//! middle of a large file fetches only the chunks it touches; snapshots taken while mounted
//! appear; the mount is read-only; a second mount on the same point is refused; SIGTERM
//! unmounts and the process exits. MongoDB collections read as BSON, JSON lines (checked
//! with Python's `bson.json_util`) and index specs.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{assert_same_tree, service, write_big_file, Env};

/// A running `repo mount`, unmounted (SIGTERM) when stopped or dropped.
struct Mount {
    child: Option<Child>,
    at: PathBuf,
}

fn mounted(at: &Path) -> bool {
    let want = at.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

impl Mount {
    fn start(env: &Env, at: &Path, extra: &[&str]) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let mut args = vec!["--json", "mount", at.to_str().unwrap()];
        args.extend_from_slice(extra);
        let child = env
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = Mount {
            child: Some(child),
            at: at.to_path_buf(),
        };
        let start = Instant::now();
        while !(mounted(at) && at.join("snapshots").is_dir()) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                let out = m.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "repo mount exited ({st}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(start.elapsed() < Duration::from_secs(30), "not mounted");
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// SIGTERM; returns the report printed on stdout.
    fn stop(mut self) -> serde_json::Value {
        let child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!mounted(&self.at), "still mounted after the process ended");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::process::Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.at)
                .status();
        }
    }
}

fn fuse_available() -> bool {
    service("REPO_TEST_FUSERMOUNT").is_some()
}

#[test]
fn mounted_snapshots_equal_the_source_and_reads_fetch_only_what_they_touch() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    env.init();
    let data = env.path("data set");
    let dir = data.join("proj ü/src");
    std::fs::create_dir_all(dir.join("deep/er")).unwrap();
    let big_len = 24 << 20;
    write_big_file(&dir.join("big.bin"), big_len, 7);
    std::fs::write(dir.join("a \"quoted\"\nname.txt"), "a\n").unwrap();
    std::fs::write(dir.join("deep/empty"), "").unwrap();
    std::fs::write(dir.join("deep/er/x.txt"), "x".repeat(10_000)).unwrap();
    std::fs::hard_link(dir.join("deep/er/x.txt"), dir.join("deep/x-link.txt")).unwrap();
    std::os::unix::fs::symlink("../big.bin", dir.join("deep/link")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at all", dir.join("dangling")).unwrap();
    let exe = dir.join("run.sh");
    std::fs::write(&exe, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    std::fs::set_permissions(
        dir.join("deep/empty"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let snap = env.snapshot(&[&data]);
    let id = snap["id"].as_str().unwrap().to_string();
    let mnt = env.path("mnt");
    let inside = |root: &Path| root.join(data.strip_prefix("/").unwrap());

    // One byte from the middle of a 24 MiB file: only the chunk(s) around it are fetched.
    let m = Mount::start(&env, &mnt, &[]);
    let mut f =
        std::fs::File::open(inside(&mnt.join("latest")).join("proj ü/src/big.bin")).unwrap();
    f.seek(SeekFrom::Start(big_len as u64 / 2)).unwrap();
    let mut one = [0u8; 1];
    f.read_exact(&mut one).unwrap();
    drop(f);
    let source = std::fs::read(dir.join("big.bin")).unwrap();
    assert_eq!(one[0], source[big_len / 2]);
    let report = m.stop();
    let chunks = report["chunks_fetched"].as_u64().unwrap();
    let bytes = report["bytes_fetched"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&chunks) && bytes < big_len as u64 / 4,
        "one byte fetched {chunks} chunks, {bytes} bytes: {report}"
    );

    // Every file through the mount equals the source.
    let m = Mount::start(&env, &mnt, &[]);
    assert_same_tree(&data, &inside(&mnt.join("latest")));
    let names = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&mnt),
        ["by-host", "by-id", "by-tag", "latest", "snapshots"]
    );
    let first = names(&mnt.join("snapshots"));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        std::fs::read_link(mnt.join("by-id").join(&id)).unwrap(),
        PathBuf::from(format!("../snapshots/{}", first[0]))
    );
    let host = names(&mnt.join("by-host"));
    assert_eq!(host.len(), 1);
    assert_eq!(
        names(&mnt.join("by-host").join(&host[0])),
        [first[0].as_str(), "latest"]
    );
    // Read-only.
    let err = std::fs::write(inside(&mnt.join("latest")).join("new.txt"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{err}");
    // A second mount on the same point is refused clearly.
    let out = env.run(&["mount", mnt.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("already a mount point"),
        "{e}"
    );

    // A snapshot taken while mounted appears, and `latest` follows it.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(dir.join("deep/er/x.txt"), "changed").unwrap();
    env.snapshot(&[&data]);
    // The mount looks for new snapshots every second or so.
    let start = std::time::Instant::now();
    let now = loop {
        let now = names(&mnt.join("snapshots"));
        if now.len() >= 2 || start.elapsed() > Duration::from_secs(60) {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(now.len(), 2, "{now:?}");
    // And the kernel keeps what it looked up (`latest`) for a second.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        std::fs::read_link(mnt.join("latest")).unwrap(),
        PathBuf::from(format!("snapshots/{}", now[1]))
    );
    assert_eq!(
        std::fs::read_to_string(inside(&mnt.join("latest")).join("proj ü/src/deep/er/x.txt"))
            .unwrap(),
        "changed"
    );
    assert_eq!(
        std::fs::read(
            inside(&mnt.join("snapshots").join(&now[0])).join("proj ü/src/deep/er/x.txt")
        )
        .unwrap(),
        b"x".repeat(10_000)
    );
    m.stop();
    assert!(names(&mnt).is_empty(), "the mount point is empty again");
}

#[test]
fn mongodb_collections_read_as_bson_json_lines_and_index_specs() {
    use mongodb::bson::Document;
    if !fuse_available() {
        return;
    }
    let Some((uri, client)) = crate::common::mongo_server() else {
        return;
    };
    let Some(secantusd) = service("REPO_TEST_SECANTUSD") else {
        return;
    };
    let name = crate::common::unique_db("mountc");
    let docs = crate::common::odd_users(&client, &name, 300);
    let env = Env::new();
    env.init();
    // Files and collections in one snapshot: both show, the collections under mongodb/.
    let files = env.path("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("notes.txt"), "beside the database\n").unwrap();
    env.ok(&[
        "snapshot",
        files.to_str().unwrap(),
        &uri,
        &format!("--db={name}"),
    ]);
    let mnt = env.path("mnt");
    let m = Mount::start(&env, &mnt, &[]);
    assert_eq!(
        std::fs::read_to_string(
            mnt.join("latest")
                .join(files.strip_prefix("/").unwrap())
                .join("notes.txt")
        )
        .unwrap(),
        "beside the database\n"
    );
    let dir = mnt.join("latest/mongodb").join(&name);
    let mut listed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "odd name.users.bson",
            "odd name.users.indexes.json",
            "odd name.users.jsonl"
        ]
    );
    let bson = std::fs::read(dir.join("odd name.users.bson")).unwrap();
    let mut raw = bson.as_slice();
    let mut from_bson = Vec::new();
    while !raw.is_empty() {
        from_bson.push(Document::from_reader(&mut raw).unwrap());
    }
    assert_eq!(from_bson, docs, "the BSON stream is the documents");
    let dumped = env.run(&[
        "dump",
        "latest",
        "--mongodb",
        &format!("{name}.odd name.users"),
        "--format",
        "bson",
    ]);
    assert!(dumped.stdout == bson, "the mount and `repo dump` agree");

    // JSON lines, parsed by Python's bson.json_util and encoded again: the same bytes.
    let python = Path::new(&secantusd).with_file_name("python");
    let jsonl = dir.join("odd name.users.jsonl");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import sys\nfrom bson import json_util, encode\n\
             lines = open(sys.argv[1], encoding='utf-8').read().splitlines()\n\
             sys.stdout.buffer.write(b''.join(encode(json_util.loads(l)) for l in lines))",
        )
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == bson,
        "bson.json_util reads the JSON lines as the documents"
    );

    let specs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("odd name.users.indexes.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = specs
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["_id_", "when_-1"]);
    m.stop();
    client.database(&name).drop().run().unwrap();
}
