//! The one `river-relay serve` runner of the suite: every front (fstream, HTTP, RTMP, RTSP) on
//! 127.0.0.1:0, a users directory, the hub's stderr collected in a [`Log`], and the waits the
//! tests need (a log line, watchers attached, the process's exit), each with a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{river, tmpdir, wait_deadline};

/// How long a peer may take to answer on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// A unique directory under the test temp dir.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = tmpdir().join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Collects a child's stderr lines in the background.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn follow(child: &mut Child) -> Log {
        let log = Log::default();
        let l = log.clone();
        let err = child.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.0.lock().unwrap().push(line);
            }
        });
        log
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Waits for a line containing `needle` and returns it.
    pub fn wait_for(&self, needle: &str, what: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                start.elapsed() < WAIT,
                "{what} never logged {needle:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// The users most tests log in as: (name, password).
pub const USERS: &[(&str, &str)] = &[("fier", "123"), ("live", "pushpw")];

/// A running `river-relay -v serve` with fstream, HTTP, RTMP and RTSP on 127.0.0.1:0 and the
/// users given as (name, password); killed on drop.
pub struct Hub {
    child: Child,
    pub fstream: String,
    pub http: String,
    pub rtmp: String,
    pub rtsp: String,
    pub log: Log,
    users: PathBuf,
    /// The options after the addresses, and the descriptor limit, for [`Hub::restart`].
    extra: Vec<String>,
    nofile: Option<u32>,
}

impl Hub {
    pub fn start(users: &[(&str, &str)]) -> Hub {
        Hub::start_with(users, &[])
    }

    /// [`Hub::start`] with more `serve` options.
    pub fn start_with(users: &[(&str, &str)], extra: &[&str]) -> Hub {
        Hub::start_as(users, extra, None)
    }

    /// [`Hub::start_with`] with at most `nofile` descriptors (RLIMIT_NOFILE, through the shell's
    /// `ulimit -n`, which then execs the hub: the pid is the hub's).
    pub fn start_limited(users: &[(&str, &str)], extra: &[&str], nofile: u32) -> Hub {
        Hub::start_as(users, extra, Some(nofile))
    }

    fn start_as(users: &[(&str, &str)], extra: &[&str], nofile: Option<u32>) -> Hub {
        let dir = scratch("hub").join("users");
        std::fs::create_dir_all(&dir).unwrap();
        for (u, p) in users {
            std::fs::write(
                dir.join(format!("{u}.ini")),
                format!("[DEFAULT]\npassword={p}\n"),
            )
            .unwrap();
        }
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let any = "127.0.0.1:0";
        let (child, log) = Hub::spawn(&dir, [any, any, any, any], &extra, nofile);
        let addr = |what: &str| {
            let prefix = format!("river-relay: {what} listening on ");
            log.wait_for(&prefix, "river-relay serve")
                .split_once(&prefix)
                .unwrap()
                .1
                .to_string()
        };
        let (fstream, http) = (addr("fstream"), addr("http"));
        let (rtmp, rtsp) = (addr("rtmp"), addr("rtsp"));
        Hub {
            child,
            fstream,
            http,
            rtmp,
            rtsp,
            log,
            users: dir,
            extra,
            nofile,
        }
    }

    /// `river-relay -v serve` on `addrs` (fstream, HTTP, RTMP, RTSP) with `extra` options.
    fn spawn(
        users: &Path,
        addrs: [&str; 4],
        extra: &[String],
        nofile: Option<u32>,
    ) -> (Child, Log) {
        let [fstream, http, rtmp, rtsp] = addrs;
        let mut cmd = match nofile {
            None => Command::new(river("river-relay")),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(river("river-relay"));
                sh
            }
        };
        let mut child = cmd
            .args(["-v", "serve", "--listen", fstream])
            .args(["--http", http, "--rtmp", rtmp])
            .args(["--rtsp", rtsp, "--users"])
            .arg(users)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn river-relay serve");
        let log = Log::follow(&mut child);
        (child, log)
    }

    /// Kills the hub (SIGKILL: no flush, no goodbye) and starts a new one on the same four
    /// addresses, users and options; waits until it listens. The old log is kept in the returned
    /// [`Log`]; `self.log` is the new hub's.
    pub fn restart(&mut self) -> Log {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let addrs = [
            self.fstream.as_str(),
            self.http.as_str(),
            self.rtmp.as_str(),
            self.rtsp.as_str(),
        ];
        let (child, log) = Hub::spawn(&self.users, addrs, &self.extra, self.nofile);
        self.child = child;
        let old = std::mem::replace(&mut self.log, log);
        self.log.wait_for(
            "river-relay: rtsp listening on ",
            "restarted river-relay serve",
        );
        old
    }

    /// Writes a user's file as given (the hub re-reads it at every login).
    pub fn write_user_file(&self, user: &str, text: &str) {
        std::fs::write(self.users.join(format!("{user}.ini")), text).unwrap();
    }

    pub fn users_dir(&self) -> &Path {
        &self.users
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the hub.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for the hub to exit, at most `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        wait_deadline(&mut self.child, deadline, "river-relay serve")
    }

    /// One HTTP GET of `path` on the hub's HTTP front over a raw socket: (head, body).
    pub fn get(&self, path: &str) -> (String, Vec<u8>) {
        let mut s = TcpStream::connect(&self.http).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        let split = v
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap_or(v.len());
        (
            String::from_utf8_lossy(&v[..split]).into_owned(),
            v[split..].to_vec(),
        )
    }

    /// `GET /stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        let (head, body) = self.get("/stats");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        serde_json::from_slice(&body).expect("stats JSON")
    }

    /// The hub's CPU time so far (utime + stime from /proc/PID/stat), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let rest = &s[s.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// The hub's resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// The number of watchers attached to a channel, or waiting for it.
    pub fn watchers(&self, user: &str, channel: &str) -> usize {
        let s = self.stats();
        s["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["user"] == user && c["channel"] == channel)
            .map(|c| {
                c["watchers"].as_array().unwrap().len() + c["waiting"].as_u64().unwrap() as usize
            })
            .unwrap_or(0)
    }

    /// Waits until at least `n` watchers are attached to or waiting for a channel.
    pub fn wait_watchers(&self, user: &str, channel: &str, n: usize) {
        let start = Instant::now();
        while self.watchers(user, channel) < n {
            assert!(
                start.elapsed() < WAIT,
                "{n} watchers never joined {user}/{channel}:\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
