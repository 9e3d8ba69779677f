//! A `repo serve` process for tests, and a real HTTP client (ureq) to call it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Env;

/// A running service; SIGTERM on drop.
pub struct Server {
    pub base: String,
    child: Option<Child>,
    pub log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

impl Server {
    /// Starts `repo serve` on a free loopback port with `env`'s config, plus `extra`
    /// environment variables.
    pub fn start(env: &Env, extra: &[(&str, &str)]) -> Server {
        let mut c = env.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn repo serve");
        let log = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no address: {line:?} {}", log.lock().unwrap()))
            .to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Server {
            base,
            child: Some(child),
            log,
            agent,
        }
    }

    /// `method path` with `token` and a JSON `body`: (status, body as JSON or text).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let res = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            _ => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some(b) => r
                        .header("Content-Type", "application/json")
                        .send(b.to_string()),
                    None => r.send_empty(),
                }
            }
        };
        let mut res = res.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// GET expecting 200.
    pub fn get(&self, path: &str, token: &str) -> Value {
        let (s, v) = self.call("GET", path, Some(token), None);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// Waits for job `id` to end; its final view.
    pub fn wait_job(&self, id: &str, token: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.get(&format!("/api/jobs/{id}"), token);
            let state = v["state"].as_str().unwrap().to_string();
            if !["queued", "running"].contains(&state.as_str()) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "job {id} never ended: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to a minute) until the service has logged `text`.
    pub fn wait_log(&self, text: &str) {
        let start = std::time::Instant::now();
        while !self.log.lock().unwrap().contains(text) {
            assert!(
                start.elapsed().as_secs() < 60,
                "never logged {text:?}: {}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status and the log.
    pub fn stop(self) -> (Option<i32>, String) {
        self.signal_stop();
        self.wait_exit()
    }

    /// Sends SIGTERM: the service stops taking work and lets its jobs finish.
    pub fn signal_stop(&self) {
        let child = self.child.as_ref().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }

    /// Waits for the service to exit: its exit code and everything it logged.
    pub fn wait_exit(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let st = child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        (st.code(), self.log.lock().unwrap().clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Creates a token with `role` through the CLI; returns it.
pub fn token(env: &Env, name: &str, role: &str) -> String {
    let v = env.json(&["token", "create", "--name", name, "--role", role]);
    assert_eq!(v["role"], role);
    v["token"].as_str().unwrap().to_string()
}

/// Writes the config file.
pub fn config(env: &Env, text: &str) {
    let p = env.path("home/config/repo/config.toml");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
}
