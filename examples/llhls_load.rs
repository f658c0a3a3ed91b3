//! Load generator for bench/llhls.sh: N LL-HLS clients against one river-hls-seg `--serve`, each
//! on one keep-alive connection doing what hls.js does at the live edge: a blocking playlist
//! reload for the next part (`_HLS_msn`/`_HLS_part`), then that part. Prints one line of
//! key=value figures, with the CPU the server process used meanwhile.
//!
//!   llhls_load PLAYLIST_URL N SECS SERVER_PID      (N 0: the server's CPU with no client)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn proc_cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; after ")" they are the 12th and 13th.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

struct Conn {
    host: String,
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(host: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(host)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            host: host.to_string(),
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    /// GET on the kept-alive connection: (status, body).
    fn get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        write!(self.w, "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host)?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body)?;
        Ok((status, body))
    }
}

/// The next part after what the playlist lists (msn, index), and the last part's URI.
fn next_part(text: &str) -> (u64, u64, Option<String>) {
    let (mut msn, mut skipped, mut segs, mut open) = (0u64, 0u64, 0u64, 0u64);
    let mut last = None;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS=") {
            skipped = v.parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("#EXT-X-PART:") {
            open += 1;
            last = v
                .split("URI=\"")
                .nth(1)
                .and_then(|u| u.split('"').next())
                .map(str::to_string);
        } else if !l.starts_with('#') && !l.is_empty() {
            segs += 1;
            open = 0;
        }
    }
    (msn + skipped + segs, open, last)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        eprintln!("usage: llhls_load PLAYLIST_URL N SECS SERVER_PID");
        std::process::exit(2);
    }
    let url = a[1].strip_prefix("http://").expect("http URL").to_string();
    let (host, path) = url.split_at(url.find('/').expect("a path"));
    let (host, path) = (host.to_string(), path.to_string());
    let base = path.rsplit_once('/').map(|x| x.0).unwrap_or("").to_string();
    let n: usize = a[2].parse().expect("N");
    let secs: f64 = a[3].parse().expect("SECS");
    let pid: u32 = a[4].parse().expect("SERVER_PID");
    let playlists = Arc::new(AtomicU64::new(0));
    let parts = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let hz = 100.0; // USER_HZ
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let cpu0 = proc_cpu_ticks(pid);
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (host, path, base) = (host.clone(), path.clone(), base.clone());
            let (pl, pa, er) = (playlists.clone(), parts.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut c = match Conn::open(&host) {
                    Ok(c) => c,
                    Err(_) => {
                        er.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let mut text = match c.get(&path) {
                    Ok((200, b)) => String::from_utf8_lossy(&b).to_string(),
                    _ => {
                        er.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let mut seen = next_part(&text).2;
                while Instant::now() < end {
                    let (msn, part, _) = next_part(&text);
                    let q = format!("{path}?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES");
                    match c.get(&q) {
                        Ok((200, b)) => {
                            pl.fetch_add(1, Ordering::Relaxed);
                            text = String::from_utf8_lossy(&b).to_string();
                        }
                        _ => {
                            er.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    let last = next_part(&text).2;
                    if last != seen {
                        if let Some(u) = &last {
                            match c.get(&format!("{base}/{u}")) {
                                Ok((200, _)) => {
                                    pa.fetch_add(1, Ordering::Relaxed);
                                }
                                _ => {
                                    er.fetch_add(1, Ordering::Relaxed);
                                    return;
                                }
                            }
                        }
                        seen = last;
                    }
                }
            })
        })
        .collect();
    if n == 0 {
        // The baseline: the server's CPU with no client.
        std::thread::sleep(end - Instant::now());
    }
    for t in threads {
        let _ = t.join();
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (proc_cpu_ticks(pid) - cpu0) as f64 / hz;
    let (p, q, e) = (
        playlists.load(Ordering::Relaxed),
        parts.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    println!(
        "clients={n} secs={wall:.1} playlist_req_per_s={:.0} part_req_per_s={:.0} errors={e} server_cpu_s={cpu:.2} server_cpu_pct={:.1} cpu_ms_per_1000_req={:.1}",
        p as f64 / wall,
        q as f64 / wall,
        100.0 * cpu / wall,
        1e6 * cpu / (p + q).max(1) as f64
    );
}
