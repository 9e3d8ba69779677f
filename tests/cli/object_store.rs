//! Object-storage repositories against real servers (scripts/object-stores starts them and
//! exports their endpoints): the backend conformance suite on S3, Azure Blob and GCS, and
//! the whole command set end to end on S3, with injected faults and two writers at once.

use std::path::Path;
use std::process::Command;

use repo::backend::conformance;
use repo::backend::target::{ObjectOptions, Target};

use crate::common::{assert_same_tree, ok_output as ok, random_bytes, write_big_file, Env};

/// The well-known development account of Azurite (published in its documentation).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn endpoint(var: &str) -> Option<String> {
    crate::common::service(var)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), rand_u32())
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16)
}

/// Credentials and settings the servers need; nothing reaches for a real cloud.
fn store_env(c: &mut Command) {
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "testtesttest")
        .env("AWS_REGION", "us-east-1")
        .env("AZURE_STORAGE_ACCOUNT", "devstoreaccount1")
        .env("AZURE_STORAGE_KEY", AZURITE_KEY)
        .env("REPO_NO_AMBIENT_CREDENTIALS", "1");
}

fn backend(location: &str, opts: &ObjectOptions) -> std::sync::Arc<dyn repo::backend::Backend> {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "testtesttest"),
        ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"),
        ("AZURE_STORAGE_KEY", AZURITE_KEY),
    ] {
        std::env::set_var(k, v);
    }
    let target = Target::parse(location)
        .unwrap()
        .expect("object-store location");
    repo::backend::object::open(location, &target, opts).expect("backend")
}

fn test_opts(endpoint: Option<String>) -> ObjectOptions {
    ObjectOptions {
        endpoint,
        no_ambient_credentials: true,
        ..ObjectOptions::default()
    }
}

#[test]
fn conformance_on_s3_azure_and_gcs() {
    let mut ran = 0;
    if let Some(ep) = endpoint("REPO_TEST_S3_ENDPOINT") {
        let b = backend(
            &format!("s3:{ep}/repo-test/{}", unique("conf")),
            &test_opts(None),
        );
        conformance::check(b.as_ref());
        // 20 MiB: a multipart upload in 8 MiB parts; 1,100 objects: more than one page.
        conformance::check_scale(b.as_ref(), 20 << 20, 1100);
        ran += 1;
    }
    if let Some(ep) = endpoint("REPO_TEST_AZURE_ENDPOINT") {
        let b = backend(
            &format!("azure:repo-test/{}", unique("conf")),
            &test_opts(Some(ep)),
        );
        conformance::check(b.as_ref());
        conformance::check_scale(b.as_ref(), 20 << 20, 300);
        ran += 1;
    }
    if let Some(ep) = endpoint("REPO_TEST_GCS_ENDPOINT") {
        let b = backend(
            &format!("gs:repo-test/{}", unique("conf")),
            &test_opts(Some(ep)),
        );
        // The emulator ignores the precondition real GCS enforces (see the function).
        conformance::check_without_exclusive_create(b.as_ref());
        // fake-gcs-server rejects multipart (XML API) uploads: one put per pack there.
        conformance::check_scale(b.as_ref(), 6 << 20, 300);
        ran += 1;
    }
    eprintln!("conformance ran on {ran} object store(s)");
    if crate::common::services_required() {
        assert_eq!(ran, 3, "conformance must run on S3, Azure Blob and GCS");
    }
}

#[test]
fn wrong_credentials_fail_clearly() {
    let Some(ep) = endpoint("REPO_TEST_AZURE_ENDPOINT") else {
        return;
    };
    let env = Env::new();
    let mut c = env.cmd(&["init"]);
    store_env(&mut c);
    c.env(
        "REPO_REPOSITORY",
        format!("azure:repo-test/{}", unique("badkey")),
    )
    .env("REPO_ENDPOINT", &ep)
    .env("AZURE_STORAGE_KEY", "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleQ==")
    .env("REPO_TEST_FAULT_RATIO", "")
    .args(["--retries", "1"]);
    let out = c.output().expect("run repo");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storage") && (err.contains("denied") || err.contains("403")),
        "{err}"
    );
    // The message says where credentials come from and which are set, never the key.
    assert!(
        err.contains("AZURE_STORAGE_KEY (set)")
            && err.contains("AZURE_STORAGE_CONNECTION_STRING (not set)"),
        "{err}"
    );
    assert!(!err.contains("d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleQ"), "{err}");
}

/// Init, snapshot and restore of a small tree with only the environment `vars` (none of
/// the test defaults), as a user of that store would configure `repo`.
fn round_trip_with_only(repo: &str, vars: &[(&str, &str)]) -> Env {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(300_000, 3)).unwrap();
    let run = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env("REPO_REPOSITORY", repo).envs(vars.iter().copied());
        ok(c)
    };
    run(&["init"]);
    run(&["snapshot", src.to_str().unwrap()]);
    let target = env.path("restored");
    run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    env
}

#[test]
fn azure_connection_string_alone_is_enough() {
    let Some(ep) = endpoint("REPO_TEST_AZURE_ENDPOINT") else {
        return;
    };
    let repo = format!("azure:repo-test/{}", unique("connstr"));
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={ep};"
    );
    let env = round_trip_with_only(&repo, &[("AZURE_STORAGE_CONNECTION_STRING", &conn)]);
    // A malformed connection string is named in the error.
    let mut c = env.cmd(&["snapshots"]);
    c.env("REPO_REPOSITORY", &repo)
        .env("AZURE_STORAGE_CONNECTION_STRING", "not a connection string");
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AZURE_STORAGE_CONNECTION_STRING"), "{err}");
}

#[test]
fn gcs_emulator_host_alone_is_enough() {
    let Some(ep) = endpoint("REPO_TEST_GCS_ENDPOINT") else {
        return;
    };
    // The host:port form Google's tools take; no credentials, no REPO_* storage settings.
    let host = ep.trim_start_matches("http://");
    let repo = format!("gs:repo-test/{}", unique("emulator"));
    round_trip_with_only(&repo, &[("STORAGE_EMULATOR_HOST", host)]);
}

/// Runs `repo` against an S3 repository.
fn s3_cmd(env: &Env, repo: &str, cache: &str, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    store_env(&mut c);
    c.env("REPO_REPOSITORY", repo)
        .env("XDG_CACHE_HOME", env.path(cache));
    c
}

/// Files in a cache directory's object cache.
fn cached_objects(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("/objects/") {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs")).unwrap();
    for i in 0..40u64 {
        std::fs::write(
            root.join("docs").join(format!("f{i}.txt")),
            random_bytes(1000 + (i as usize) * 700, 2 * i + 1),
        )
        .unwrap();
    }
    write_big_file(&root.join("big.bin"), 24 << 20, 99);
}

#[test]
fn every_command_works_on_s3_with_faults_and_two_writers() {
    let Some(ep) = endpoint("REPO_TEST_S3_ENDPOINT") else {
        return;
    };
    let env = Env::new();
    let repo = format!("s3:{ep}/repo-test/{}", unique("e2e"));
    let src = env.path("src");
    make_tree(&src);
    let s = src.to_str().unwrap();
    ok(s3_cmd(&env, &repo, "cache-a", &["init"]));
    ok(s3_cmd(&env, &repo, "cache-a", &["snapshot", s]));
    // Incremental: one file changed, one added.
    std::fs::write(src.join("docs/f3.txt"), b"changed").unwrap();
    std::fs::write(src.join("docs/new.txt"), random_bytes(5000, 77)).unwrap();
    let second = ok(s3_cmd(&env, &repo, "cache-a", &["snapshot", s, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert!(
        v["summary"]["bytes_added"].as_u64().unwrap() < 1 << 20,
        "{v}"
    );

    // 10% of requests fail before reaching the server: retries carry snapshot and restore.
    std::fs::write(src.join("docs/f5.txt"), random_bytes(300_000, 5)).unwrap();
    let mut c = s3_cmd(&env, &repo, "cache-a", &["snapshot", s]);
    c.env("REPO_TEST_FAULT_RATIO", "0.1");
    ok(c);
    let target = env.path("restored");
    let mut c = s3_cmd(
        &env,
        &repo,
        "cache-a",
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    c.env("REPO_TEST_FAULT_RATIO", "0.1");
    ok(c);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));

    // A fresh cache (another host, or a deleted cache) sees everything from the segments.
    ok(s3_cmd(&env, &repo, "cache-b", &["check", "--read-data"]));
    let snaps = ok(s3_cmd(&env, &repo, "cache-b", &["snapshots", "--json"]));
    let snaps: serde_json::Value = serde_json::from_str(&snaps).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 3);
    // Snapshot objects and trees read from the store are now cached locally.
    let cached = cached_objects(&env.path("cache-b"));
    assert!(
        cached.iter().any(|p| p.contains("/objects/snapshots/")),
        "{cached:?}"
    );
    // Trees are kept by the pack range they were read from (packs never change).
    assert!(
        cached.iter().any(|p| p.contains("/objects/packs/")),
        "{cached:?}"
    );
    // The operation log too: records never change once written.
    let log = ok(s3_cmd(&env, &repo, "cache-b", &["history", "--json"]));
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let n = log.as_array().unwrap().len();
    assert!(n >= 4, "{log}");
    let cached = cached_objects(&env.path("cache-b"));
    assert_eq!(
        cached
            .iter()
            .filter(|p| p.contains("/objects/log/"))
            .count(),
        n,
        "{cached:?}"
    );
    let again = ok(s3_cmd(&env, &repo, "cache-b", &["history", "--json"]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again).unwrap(),
        log
    );

    // Two writers from different "hosts" (own caches) at the same time.
    let other = env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    write_big_file(&other.join("o.bin"), 12 << 20, 5);
    let mut a = s3_cmd(&env, &repo, "cache-a", &["snapshot", s, "--host", "host-a"]);
    let mut b = s3_cmd(
        &env,
        &repo,
        "cache-b",
        &[
            "snapshot",
            other.to_str().unwrap(),
            "--host",
            "host-b",
            "--json",
        ],
    );
    for c in [&mut a, &mut b] {
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
    }
    let (ha, hb) = (a.spawn().unwrap(), b.spawn().unwrap());
    let (oa, ob) = (
        ha.wait_with_output().unwrap(),
        hb.wait_with_output().unwrap(),
    );
    assert!(
        oa.status.success(),
        "{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    assert!(
        ob.status.success(),
        "{}",
        String::from_utf8_lossy(&ob.stderr)
    );
    ok(s3_cmd(&env, &repo, "cache-c", &["check", "--read-data"]));
    let snap_b: serde_json::Value = serde_json::from_slice(&ob.stdout).unwrap();
    let id_b = snap_b["id"].as_str().expect("snapshot id").to_string();
    let t2 = env.path("restored-b");
    ok(s3_cmd(
        &env,
        &repo,
        "cache-a",
        &["restore", &id_b, "--target", t2.to_str().unwrap()],
    ));
    assert_same_tree(&other, &t2.join(other.strip_prefix("/").unwrap()));

    // Retention and space reclaim.
    ok(s3_cmd(
        &env,
        &repo,
        "cache-a",
        &["forget", "--keep-last", "1", "--prune"],
    ));
    ok(s3_cmd(&env, &repo, "cache-a", &["check", "--read-data"]));
}

#[test]
fn copy_from_a_local_repository_to_s3() {
    let Some(ep) = endpoint("REPO_TEST_S3_ENDPOINT") else {
        return;
    };
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src);
    env.init();
    env.snapshot(&[&src]);
    let local = env.repo();
    let repo = format!("s3:{ep}/repo-test/{}", unique("copy"));
    ok(s3_cmd(&env, &repo, "cache-s3", &["init"]));
    let out = ok(s3_cmd(
        &env,
        &repo,
        "cache-s3",
        &["copy", "--from", local.to_str().unwrap(), "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["copied"].as_array().unwrap().len(), 1, "{v}");
    ok(s3_cmd(&env, &repo, "cache-s3", &["check", "--read-data"]));
    let target = env.path("restored");
    ok(s3_cmd(
        &env,
        &repo,
        "cache-s3",
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ));
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
}

/// A private Azurite with its data in `dir`, on `port`, with container `repo-test`.
fn start_azurite(bin: &str, py: &str, dir: &Path, port: u16) -> std::process::Child {
    let child = Command::new(bin)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir)
        .args(["--silent", "--disableTelemetry", "--skipApiVersionCheck"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start azurite");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\n\
         c = BlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;\
         AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};\
         BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;')\n\
         try:\n    c.create_container('repo-test')\nexcept Exception as e:\n    \
         assert 'ContainerAlreadyExists' in str(e), e\n"
    );
    let st = Command::new(py)
        .arg("-c")
        .arg(script)
        .status()
        .expect("python");
    assert!(st.success(), "creating the container failed");
    child
}

#[test]
fn server_stopping_mid_snapshot_fails_cleanly_and_the_next_run_succeeds() {
    let (Some(bin), Some(py)) = (
        endpoint("REPO_TEST_AZURITE_BIN"),
        endpoint("REPO_TEST_OBJSTORE_PYTHON"),
    ) else {
        return;
    };
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let data_dir = env.path("azurite");
    let mut server = start_azurite(&bin, &py, &data_dir, port);
    let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
    let repo = "azure:repo-test/stop";
    let cmd = |args: &[&str]| {
        let mut c = s3_cmd(&env, repo, "cache", args);
        c.env("REPO_ENDPOINT", &endpoint);
        c
    };
    let src = env.path("src");
    make_tree(&src);
    let s = src.to_str().unwrap();
    ok(cmd(&["init"]));
    ok(cmd(&["snapshot", s]));
    // New data uploaded at 4 MB/s, so the upload is still running when the server dies.
    write_big_file(&src.join("more.bin"), 40 << 20, 1234);
    let mut c = cmd(&["snapshot", s, "--retries", "2", "--limit-upload", "4M"]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let running = c.spawn().expect("snapshot");
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop(&mut server);
    let out = running.wait_with_output().expect("wait");
    assert!(!out.status.success(), "the snapshot should have failed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage"), "{err}");

    let mut server = start_azurite(&bin, &py, &data_dir, port);
    // Only the first snapshot exists, and nothing it needs is missing.
    let snaps = ok(cmd(&["snapshots", "--json"]));
    let snaps: serde_json::Value = serde_json::from_str(&snaps).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    ok(cmd(&["check", "--read-data"]));
    ok(cmd(&["unlock"]));
    ok(cmd(&["snapshot", s]));
    ok(cmd(&["check", "--read-data"]));
    let target = env.path("restored");
    ok(cmd(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]));
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    // The failed snapshot's record waited on this host while the server was down and
    // reached the repository with the next record, in its place by start time.
    let log: serde_json::Value = serde_json::from_str(&ok(cmd(&["history", "--json"]))).unwrap();
    let got: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("snapshot", "ok"),
            ("snapshot", "failed"),
            ("check", "ok"),
            ("unlock", "ok"),
            ("snapshot", "ok"),
            ("check", "ok"),
            ("restore", "ok"),
        ],
        "{log}"
    );
    stop(&mut server);
}

/// Stops a server the way a service manager does (SIGTERM), so Azurite saves its state.
fn stop(server: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

#[test]
fn storage_class_and_download_limit_apply_on_s3() {
    let (Some(ep), Some(py)) = (
        endpoint("REPO_TEST_S3_ENDPOINT"),
        endpoint("REPO_TEST_OBJSTORE_PYTHON"),
    ) else {
        return;
    };
    let env = Env::new();
    let prefix = unique("class");
    let repo = format!("s3:{ep}/repo-test/{prefix}");
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    write_big_file(&src.join("b.bin"), 8 << 20, 3);
    // From the options file, as a user would keep it.
    let opts = env.path("options");
    std::fs::write(&opts, "# per-host settings\nstorage-class = STANDARD_IA\n").unwrap();
    for args in [&["init"][..], &["snapshot", src.to_str().unwrap()]] {
        let mut c = s3_cmd(&env, &repo, "cache", args);
        c.env("REPO_OPTIONS_FILE", &opts);
        ok(c);
    }
    // Every object the repository wrote carries the class.
    let script = format!(
        "import boto3\n\
         s3 = boto3.client('s3', endpoint_url='{ep}', region_name='us-east-1',\
         aws_access_key_id='test', aws_secret_access_key='testtesttest')\n\
         objs = s3.list_objects_v2(Bucket='repo-test', Prefix='{prefix}/')['Contents']\n\
         assert any('/packs/' in o['Key'] for o in objs), objs\n\
         bad = [(o['Key'], o.get('StorageClass')) for o in objs if o.get('StorageClass') != 'STANDARD_IA']\n\
         assert not bad, bad\n"
    );
    let st = Command::new(py).arg("-c").arg(script).status().unwrap();
    assert!(st.success(), "objects without the storage class");

    // 8 MiB of packs at 2 MiB/s cannot arrive in under 3 s (a lower bound: load only
    // makes it slower).
    let target = env.path("restored");
    let started = std::time::Instant::now();
    ok(s3_cmd(
        &env,
        &repo,
        "cache",
        &[
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--limit-download",
            "2M",
        ],
    ));
    let took = started.elapsed();
    assert!(took.as_secs_f64() >= 3.0, "restore took {took:?}");
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
}

#[test]
fn readers_and_writers_inside_prune_windows_on_s3() {
    let Some(ep) = endpoint("REPO_TEST_S3_ENDPOINT") else {
        return;
    };
    for point in [
        "prune-after-repack",
        "prune-after-segments",
        "prune-mid-segment-delete",
        "prune-mid-pack-delete",
    ] {
        let env = Env::new();
        let repo = format!("s3:{ep}/repo-test/{}", unique("windows"));
        let src = env.path("src");
        std::fs::create_dir_all(&src).unwrap();
        let forgotten = random_bytes(900_000, 7);
        std::fs::write(src.join("old.bin"), &forgotten).unwrap();
        std::fs::write(src.join("kept.bin"), random_bytes(900_000, 9)).unwrap();
        let s = src.to_str().unwrap();
        ok(s3_cmd(
            &env,
            &repo,
            "cache-a",
            &["init", "--pack-size-mib", "1"],
        ));
        let first = ok(s3_cmd(&env, &repo, "cache-a", &["snapshot", "--json", s]));
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        std::fs::remove_file(src.join("old.bin")).unwrap();
        ok(s3_cmd(&env, &repo, "cache-a", &["snapshot", s]));
        ok(s3_cmd(
            &env,
            &repo,
            "cache-a",
            &["forget", first["id"].as_str().unwrap()],
        ));
        let store = backend(&repo, &test_opts(None));
        let objects = || -> Vec<(String, u64)> {
            let mut v: Vec<(String, u64)> = store
                .list("")
                .unwrap()
                .into_iter()
                .filter(|o| !o.path.starts_with("locks/"))
                .map(|o| (o.path, o.size))
                .collect();
            v.sort();
            v
        };
        let prune = crate::common::Paused::start(
            s3_cmd(&env, &repo, "cache-a", &["prune", "--grace", "0"]),
            point,
        );
        // Readers, as this host and as others: they may fail while packs vanish, but
        // never write.
        let before = objects();
        for (cache, args) in [
            ("cache-b", &["snapshots"][..]),
            ("cache-b", &["ls", "latest"]),
            ("cache-c", &["find", "*.bin"]),
            ("cache-c", &["stats"]),
            ("cache-d", &["index", "rebuild"]),
        ] {
            let _ = s3_cmd(&env, &repo, cache, args).output().unwrap();
        }
        assert_eq!(
            objects(),
            before,
            "{point}: a reader wrote to the repository"
        );
        // A writer started in the window waits for prune, then stores the forgotten
        // content again without deduplicating against what prune removes.
        std::fs::write(src.join("again.bin"), &forgotten).unwrap();
        let w = crate::prune_windows::writer_waiting_for(s3_cmd(
            &env,
            &repo,
            "cache-b",
            &["-v", "snapshot", "--lock-wait", "2m", s],
        ));
        let p = prune.finish();
        let w = w.finish();
        assert!(
            p.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&p.stderr)
        );
        assert!(
            w.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&w.stderr)
        );
        ok(s3_cmd(&env, &repo, "cache-e", &["check", "--read-data"]));
        let target = env.path(&format!("restored-{point}"));
        ok(s3_cmd(
            &env,
            &repo,
            "cache-e",
            &["restore", "latest", "--target", target.to_str().unwrap()],
        ));
        assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
        std::fs::remove_file(src.join("again.bin")).unwrap();
    }
}
