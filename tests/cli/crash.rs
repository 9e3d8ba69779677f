//! A snapshot killed with SIGKILL leaves a repository that checks clean and accepts the
//! next snapshot.

use std::fs;
use std::time::{Duration, Instant};

use crate::common::{assert_same_tree, write_big_file, Env};

fn count_packs(repo: &std::path::Path) -> usize {
    fs::read_dir(repo.join("packs")).map_or(0, |d| {
        d.map(|e| fs::read_dir(e.unwrap().path()).unwrap().count())
            .sum()
    })
}

#[test]
fn kill_9_mid_snapshot_then_check_and_snapshot_again() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..6 {
        write_big_file(&src.join(format!("f{i}.bin")), 40 << 20, 100 + i);
    }
    env.ok(&["init", "--pack-size-mib", "4"]);
    let mut child = env
        .cmd(&["snapshot", src.to_str().unwrap()])
        .spawn()
        .unwrap();
    let start = Instant::now();
    while count_packs(&env.repo()) < 3 && start.elapsed() < Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The kill must land mid-work, or this test proves nothing.
    assert!(
        child.try_wait().unwrap().is_none(),
        "the snapshot ended before it could be killed"
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status:?}"
    );
    assert!(
        count_packs(&env.repo()) >= 1,
        "the run should have written packs before the kill"
    );
    assert!(
        env.json(&["snapshots"]).as_array().unwrap().is_empty(),
        "a killed run must not have committed a snapshot"
    );

    // Whatever was left, the repository is consistent.
    let out = env.ok(&["check", "--read-data"]);
    assert!(out.contains("no errors found"), "{out}");
    let snap = env.snapshot(&[&src]);
    assert_eq!(snap["summary"]["skipped"].as_array().unwrap().len(), 0);
    env.ok(&["check", "--read-data"]);
    let target = env.path("t");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
}
