//! A publish/play hook for the hub's tests: Python's http.server
//! (tests/fixtures/relay/hook_server.py), which allows, refuses (a channel `deny…`, a query with
//! `token=bad`) or hangs (a channel `hang…`) and prints every JSON object it gets.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::hub::{Log, WAIT};

/// The hook server: its URL and what it printed.
pub struct HookServer {
    child: Child,
    pub log: Log,
    pub url: String,
}

impl HookServer {
    pub fn start() -> HookServer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/relay/hook_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("/usr/bin/python3: {e}; install it with `apt-get install -y python3` or run .ci/run")
            });
        let log = Log::follow(&mut child);
        let line = log.wait_for("PORT ", "the hook server");
        let port = line.split_once("PORT ").unwrap().1.trim().to_string();
        HookServer {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `serve` options: every hook, at /publish, /play, /unpublish and /stop.
    pub fn args(&self, timeout: &str) -> Vec<String> {
        let mut v = Vec::new();
        for h in ["publish", "play", "unpublish", "stop"] {
            v.push(format!("--on-{h}"));
            v.push(format!("{}/{h}", self.url));
        }
        v.extend(["--hook-timeout".to_string(), timeout.to_string()]);
        v
    }

    /// Every `action` call so far (each POSTed to /<action> as application/json).
    pub fn calls(&self, action: &str) -> Vec<Value> {
        self.log
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix("HOOK "))
            .filter_map(|l| {
                let mut p = l.splitn(3, ' ');
                let (path, ctype, body) = (p.next()?, p.next()?, p.next()?);
                let v: Value = serde_json::from_str(body).expect("hook JSON");
                (path == format!("/{action}")).then(|| {
                    assert_eq!(ctype, "application/json", "{l}");
                    assert_eq!(v["action"], action, "{l}");
                    v
                })
            })
            .collect()
    }

    /// Waits for an `action` call that `pred` picks.
    pub fn wait_call(&self, action: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self.calls(action).into_iter().find(&pred) {
                return v;
            }
            assert!(
                start.elapsed() < WAIT,
                "no such {action} call:\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The `action` call about `channel` (waits for it).
    pub fn call(&self, action: &str, channel: &str) -> Value {
        self.wait_call(action, |v| v["channel"] == channel)
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
