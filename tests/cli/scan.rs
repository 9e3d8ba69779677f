//! `repo scan`: missing, new, modified, corrupted and duplicate files against a snapshot.

use std::fs;

use crate::common::Env;

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn scan_classifies_and_exit_code_says_lost() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    for n in ["keep", "gone", "edit", "rot"] {
        fs::write(src.join(n), format!("content of {n}\n")).unwrap();
    }
    fs::write(src.join("sub/copy1"), "same bytes\n").unwrap();
    fs::write(src.join("sub/copy2"), "same bytes\n").unwrap();
    env.init();
    env.snapshot(&[&src]);
    let p = src.to_str().unwrap();
    // Nothing changed: exit 0.
    let clean = env.run(&["scan", p, "--read", "--json"]);
    assert_eq!(clean.status.code(), Some(0));

    fs::remove_file(src.join("gone")).unwrap();
    fs::write(src.join("edit"), "edited, and longer\n").unwrap();
    fs::write(src.join("fresh"), "new\n").unwrap();
    let rot = src.join("rot");
    let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&rot).unwrap());
    fs::write(&rot, "CONTENT OF ROT\n").unwrap();
    filetime::set_file_mtime(&rot, mtime).unwrap();

    let out = env.run(&["scan", p, "--json"]);
    assert_eq!(out.status.code(), Some(4), "missing file means lost");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&r["missing"]), ["gone"]);
    assert_eq!(names(&r["new"]), ["fresh"]);
    assert_eq!(names(&r["modified"]), ["edit"]);
    assert!(r["corrupted"].as_array().unwrap().is_empty(), "not read");
    assert_eq!(r["duplicates"].as_array().unwrap().len(), 1);

    let out = env.run(&["scan", p, "--read", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&r["corrupted"]), ["rot"]);
    let text = env.run(&["scan", p, "--read"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("repo restore") && text.contains("LOST"),
        "{text}"
    );
}
