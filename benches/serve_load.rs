//! Load on `repo serve` over loopback: N clients list snapshots as fast as they can for a
//! while, as a snapshot job runs; prints requests, errors and latency percentiles.
//!
//! `cargo bench --bench serve_load` runs 50 clients for 30 s; under `cargo test` (no
//! `--bench`) it runs 4 clients for 2 s as a smoke test. Every response must be a 200.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn repo(home: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_repo"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("REPO_REPOSITORY", home.join("repo"))
        .env("REPO_PASSWORD", "load test");
    c
}

fn ok(mut c: Command) -> String {
    let o = c.output().expect("run repo");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (clients, secs) = if full { (50, 30) } else { (4, 2) };
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().to_path_buf();
    let data = home.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Enough data that the snapshot job runs through the measurement.
    let mut seed = 1u64;
    for i in 0..if full { 400 } else { 20 } {
        let bytes: Vec<u8> = (0..1 << 20)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect();
        std::fs::write(data.join(format!("f{i}")), bytes).unwrap();
    }
    ok(repo(&home, &["init"]));
    let cfg = home.join(".config/repo/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[repositories.main]\nlocation = \"{}\"\npassword-env = \"REPO_PASSWORD\"\n\n[plans.load]\nrepository = \"main\"\npaths = [\"{}\"]\n",
            home.join("repo").display(),
            data.display()
        ),
    )
    .unwrap();
    let token: serde_json::Value = serde_json::from_str(&ok(repo(
        &home,
        &[
            "token", "create", "--name", "load", "--role", "operator", "--json",
        ],
    )))
    .unwrap();
    let token = format!("Bearer {}", token["token"].as_str().unwrap());
    let mut child = repo(&home, &["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().trim_start_matches("listening on ").to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // One snapshot to list, then a second running during the load.
    // Snapshot jobs back to back for the whole measurement, each with new data.
    let stop = Arc::new(AtomicBool::new(false));
    let snapshots = {
        let (agent, base, token, stop, data) = (
            agent.clone(),
            base.clone(),
            token.clone(),
            stop.clone(),
            data.clone(),
        );
        std::thread::spawn(move || {
            let mut runs = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut r = agent
                    .post(&format!("{base}/api/backup/create"))
                    .header("Authorization", &token)
                    .header("Content-Type", "application/json")
                    .send("{\"plan\": \"load\"}")
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202);
                let v: serde_json::Value =
                    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                let id = v["id"].as_str().unwrap().to_string();
                loop {
                    let mut r = agent
                        .get(&format!("{base}/api/jobs/{id}"))
                        .header("Authorization", &token)
                        .call()
                        .unwrap();
                    let v: serde_json::Value =
                        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                    if !["queued", "running"].contains(&v["state"].as_str().unwrap()) {
                        assert_eq!(v["state"], "ok", "{v}");
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                runs += 1;
                for i in 0..20 {
                    let fresh: Vec<u8> = (0..1u32 << 20)
                        .map(|b| {
                            (b.wrapping_mul(2654435761).wrapping_add(runs * 7919 + i) >> 13) as u8
                        })
                        .collect();
                    std::fs::write(data.join(format!("f{i}")), fresh).unwrap();
                }
            }
            runs
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (agent, base, token, stop) =
                (agent.clone(), base.clone(), token.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match agent
                        .get(&format!("{base}/api/backup/list"))
                        .header("Authorization", &token)
                        .call()
                    {
                        Ok(mut r) if r.status().as_u16() == 200 => {
                            let _ = r.body_mut().read_to_string();
                            lat.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().unwrap();
        lat.extend(l);
        errors += e;
    }
    let runs = snapshots.join().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "serve_load: {clients} clients, {secs} s, {runs} snapshot jobs meanwhile: {} requests ({:.0}/s), {errors} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        lat.len() as f64 / secs as f64,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    assert_eq!(errors, 0, "every request answered 200");
}
