//! A private nginx (Debian's `nginx` package) on 127.0.0.1: a temporary prefix, one worker, in
//! the foreground, stopped on drop. The caller gives the text of its `http {}` block; the access
//! log records, for every request and subrequest (a cache's background update is one), whether
//! it went to the upstream.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{tmpdir, wait_until};

/// The nginx binary (Debian installs it in /usr/sbin, not always on a user's PATH).
fn binary() -> String {
    for p in ["nginx", "/usr/sbin/nginx"] {
        let ok = Command::new(p)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.to_string();
        }
    }
    panic!("nginx is required for this test but was not found; install it with `apt-get install -y nginx` or run .ci/run");
}

/// A free port on 127.0.0.1 (bound, then released for nginx to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

/// One access log line: `$upstream_cache_status $upstream_addr $status $request_uri`.
#[derive(Debug, Clone)]
pub struct Access {
    /// HIT, MISS, EXPIRED, STALE, UPDATING… (`-` when the cache was not involved).
    pub cache: String,
    /// The upstream address when the request went there, else `None`.
    pub upstream: Option<String>,
    pub status: u16,
    pub uri: String,
}

impl Nginx {
    /// Starts nginx with `http` as the body of its http block, where `{port}` is the port it
    /// should listen on (127.0.0.1) and `{dir}` its private directory.
    pub fn start(name: &str, http: &str) -> Nginx {
        let nginx = binary();
        let dir = tmpdir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let d = dir.to_string_lossy().to_string();
        // A port taken between free_port and nginx's bind: nginx exits, and another is tried.
        for _ in 0..5 {
            let port = free_port();
            let body = http
                .replace("{port}", &port.to_string())
                .replace("{dir}", &d);
            // As root, the worker runs as root too, to write the cache under the test's tmp.
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            let conf = format!(
                "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n\
                 log_format cache '$upstream_cache_status $upstream_addr $status $request_uri';\n\
                 access_log {d}/logs/access.log cache;\nlog_subrequest on;\n\
                 client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
                 {body}\n}}\n",
                user = if root { "user root;\n" } else { "" },
            );
            std::fs::write(dir.join("nginx.conf"), conf).unwrap();
            let mut child = Command::new(&nginx)
                .args([
                    "-p",
                    &d,
                    "-c",
                    &format!("{d}/nginx.conf"),
                    "-g",
                    "daemon off;",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut up = false;
            wait_until("nginx listens or exits", Duration::from_secs(20), || {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    return true;
                }
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if up {
                return Nginx { child, port, dir };
            }
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default();
            assert!(
                log.contains("Address already in use"),
                "nginx did not start:\n{log}"
            );
        }
        panic!("nginx found no free port");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access log so far.
    pub fn accesses(&self) -> Vec<Access> {
        let text = std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let cache = f.next()?.to_string();
                let up = f.next()?;
                let status = f.next()?.parse().ok()?;
                let uri = f.next()?.to_string();
                Some(Access {
                    cache,
                    upstream: (up != "-").then(|| up.to_string()),
                    status,
                    uri,
                })
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
