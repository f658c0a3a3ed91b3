//! Headless Chromium over the DevTools pipe: opens a page and reads the frame count river's index
//! page shows, for the hls.js playback tests.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{tmpdir, wait_deadline};

/// Chromium must be installed: the test fails (never skips) with the install hint.
fn chromium() -> &'static str {
    for bin in ["chromium", "chromium-browser", "google-chrome"] {
        let ok = Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return bin;
        }
    }
    panic!(
        "chromium is required for this test but was not found; install it with \
         `apt-get install -y chromium` (Debian) or run .ci/run"
    );
}

/// One Chrome DevTools Protocol connection over `--remote-debugging-pipe` (fd 3 to the browser,
/// fd 4 from it, messages are JSON ended by NUL).
struct Cdp {
    to: File,
    from: mpsc::Receiver<serde_json::Value>,
    next_id: u64,
}

impl Cdp {
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
        deadline: Instant,
    ) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = serde_json::Value::String(s.to_string());
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method} in time"));
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds, which we own from here on.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Opens `url` in headless Chromium and polls the page's `#status` ("frames: N ...") until at
/// least 10 frames were decoded or 90 s passed. Returns the last frame count and status text.
pub fn frames_played(url: &str) -> (u64, String) {
    let bin = chromium();
    let profile = tmpdir().join(format!("chromium-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();

    let (cmd_r, cmd_w) = pipe(); // we write commands, chromium reads fd 3
    let (ev_r, ev_w) = pipe(); // chromium writes fd 4, we read
    let (c3, c4) = (cmd_r.as_raw_fd(), ev_w.as_raw_fd());
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--remote-debugging-pipe",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg("about:blank")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: only async-signal-safe dup2 calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Move both out of the way first: a pipe may already sit on fd 3 or 4.
            let (a, b) = (
                libc::fcntl(c3, libc::F_DUPFD, 10),
                libc::fcntl(c4, libc::F_DUPFD, 10),
            );
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(a);
            libc::close(b);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn chromium");
    drop((cmd_r, ev_w));
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut rd = BufReader::new(File::from(ev_r));
        let mut buf = Vec::new();
        while matches!(rd.read_until(0, &mut buf), Ok(n) if n > 0) {
            if buf.last() == Some(&0) {
                buf.pop();
            }
            if let Ok(v) = serde_json::from_slice(&buf) {
                if tx.send(v).is_err() {
                    break;
                }
            }
            buf.clear();
        }
    });
    let mut cdp = Cdp {
        to: File::from(cmd_w),
        from: rx,
        next_id: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let target = cdp.call(
        None,
        "Target.createTarget",
        serde_json::json!({"url": url}),
        deadline,
    );
    let target_id = target["targetId"].as_str().expect("targetId").to_string();
    let attached = cdp.call(
        None,
        "Target.attachToTarget",
        serde_json::json!({"targetId": target_id, "flatten": true}),
        deadline,
    );
    let session = attached["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    let expr = "(document.getElementById('status') || {}).textContent || ''";
    let mut status = String::new();
    let mut frames = 0u64;
    while Instant::now() < deadline {
        let r = cdp.call(
            Some(&session),
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true}),
            deadline,
        );
        status = r["result"]["value"].as_str().unwrap_or("").to_string();
        frames = status
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("frames: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        // A few frames past the first keyframe means hls.js fed MSE and the decoder ran.
        if frames >= 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = cdp.call(None, "Browser.close", serde_json::json!({}), deadline);
    drop(cdp);
    wait_deadline(&mut child, Duration::from_secs(30), "chromium");
    let _ = reader.join();
    let _ = std::fs::remove_dir_all(&profile);
    (frames, status)
}
