//! The HLS HTTP server (`river::http::serve`) against real clients: ffmpeg, raw sockets, 200
//! concurrent readers, and hls.js in headless Chromium. Loopback only; every wait has a deadline.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use river::http::{serve, ServeOptions, ServerHandle};

use crate::common::browser::StartGap;
use crate::common::*;

const IO_TIMEOUT: Duration = Duration::from_secs(30);
const SECRET: &[u8] = b"river-http-test-secret-contents";

/// An HLS stream made by ffmpeg (8 one-second segments, H.264 + AAC), plus the traps the
/// traversal test needs: a secret file beside the root, a symlink to it inside, a hidden file, and
/// a segment in a strftime-style subfolder.
fn stream_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = tmpdir().join(format!("http-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("www");
        std::fs::create_dir_all(root.join("2026/11/22")).unwrap();
        let seg = root.join("movie%d.ts").to_string_lossy().to_string();
        let pl = root.join("movie.m3u8").to_string_lossy().to_string();
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30:duration=8",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=8",
            "-threads",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "0",
            "-hls_segment_filename",
            &seg,
            &pl,
        ]);
        std::fs::copy(root.join("movie0.ts"), root.join("2026/11/22/101500.ts")).unwrap();
        std::fs::write(base.join("secret.txt"), SECRET).unwrap();
        std::fs::write(root.join(".movie.m3u8.tmp"), SECRET).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.ts")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        root
    })
}

fn start() -> ServerHandle {
    serve(
        "127.0.0.1:0",
        stream_dir().to_path_buf(),
        ServeOptions::default(),
    )
    .expect("serve on 127.0.0.1:0")
}

/// Segment names listed in the playlist text.
fn segments(playlist: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(playlist)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Reads one response; `head` means no body follows whatever Content-Length says.
fn read_response(r: &mut impl BufRead, head: bool) -> std::io::Result<Resp> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = HashMap::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    assert!(
        !headers.contains_key("transfer-encoding"),
        "responses are never chunked: {headers:?}"
    );
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    if !head && status != 204 && status != 304 {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Sends `raw` bytes as they are (no client normalises the target) and reads one response.
fn raw(addr: SocketAddr, raw: &[u8], head: bool) -> Resp {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    read_response(&mut BufReader::new(s), head).expect("response")
}

fn get(addr: SocketAddr, target: &str, extra: &str) -> Resp {
    raw(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n")
            .as_bytes(),
        false,
    )
}

#[test]
fn ffmpeg_decodes_the_stream_over_http() {
    require("ffmpeg");
    let h = start();
    let url = h.playlist_url();
    assert_eq!(
        url,
        format!("http://{}/live/movie.m3u8", h.local_addr()),
        "the URL the caller prints"
    );
    let out = run(
        Path::new("ffmpeg"),
        &["-nostdin", "-v", "error", "-i", &url, "-f", "null", "-"],
        b"",
    );
    assert!(
        out.status.success(),
        "ffmpeg failed on {url}: {}",
        out.stderr
    );
    assert!(
        out.stderr.trim().is_empty(),
        "ffmpeg reported errors reading {url}:\n{}",
        out.stderr
    );
    // ffmpeg read the playlist and every segment.
    let n = segments(&std::fs::read(stream_dir().join("movie.m3u8")).unwrap()).len() as u64;
    let st = h.stats();
    assert!(st.ok > n, "{st:?}");
    assert_eq!(st.client_errors, 0, "{st:?}");
}

#[test]
fn traversal_attempts_are_refused_on_the_wire() {
    let h = start();
    let addr = h.local_addr();
    let cases: &[(&str, u16)] = &[
        ("/live/../secret.txt", 403),
        ("/live/../../etc/passwd", 403),
        ("/live/../../../../../../etc/passwd", 403),
        ("/live/%2e%2e/secret.txt", 403),
        ("/live/%2E%2E/secret.txt", 403),
        ("/live/..%2fsecret.txt", 403),
        ("/live/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 403),
        ("/live/2026/../../secret.txt", 403),
        ("/../secret.txt", 403),
        ("/live/..\\secret.txt", 403),
        ("/live/..%5csecret.txt", 403),
        ("/live/leak.ts", 403),
        ("/live/up/secret.txt", 403),
        ("/live/.movie.m3u8.tmp", 403),
        ("/live/movie.m3u8%00", 400),
        ("/live/movie.m3u8%00.ts", 400),
        ("/live/%zz", 400),
        ("http://127.0.0.1/live/../secret.txt", 400),
        ("/live//etc/passwd", 404),
        ("/etc/passwd", 404),
        ("/live/", 404),
        ("/live/2026/", 404),
        ("/live/missing.ts", 404),
    ];
    for &(target, want) in cases {
        let r = get(addr, target, "");
        assert_eq!(r.status, want, "GET {target}: {r:?}");
        assert!(
            !r.body.windows(SECRET.len()).any(|w| w == SECRET),
            "GET {target} leaked the secret"
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("root:"),
            "{target}"
        );
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{target}"
        );
    }
    // The files the refused paths aim at are reachable the normal way.
    assert_eq!(get(addr, "/live/2026/11/22/101500.ts", "").status, 200);
    assert_eq!(get(addr, "/live/./movie.m3u8", "").status, 200);
    let r = raw(
        addr,
        b"DELETE /live/movie.m3u8 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    let st = h.stats();
    assert_eq!(st.ok, 2, "{st:?}");
    assert_eq!(st.client_errors, cases.len() as u64 + 1, "{st:?}");
}

#[test]
fn range_head_cors_and_types() {
    let h = start();
    let addr = h.local_addr();
    let dir = stream_dir();
    let seg = std::fs::read(dir.join("movie1.ts")).unwrap();
    let len = seg.len();
    assert!(len > 1000);

    let r = get(addr, "/live/movie1.ts", "");
    assert_eq!(r.status, 200);
    assert!(r.body == seg, "full body differs");
    assert_eq!(r.header("content-type"), Some("video/mp2t"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let expose = r.header("access-control-expose-headers").unwrap_or("");
    assert!(expose.contains("Content-Length") && expose.contains("Content-Range"));

    let r = get(addr, "/live/movie.m3u8", "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.body.starts_with(b"#EXTM3U"));

    let r = get(addr, "/live/movie1.ts", "Range: bytes=100-199\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &seg[100..200]);
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 100-199/{len}").as_str())
    );
    let r = get(addr, "/live/movie1.ts", "Range: bytes=-188\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &seg[len - 188..]);
    let r = get(
        addr,
        "/live/movie1.ts",
        &format!("Range: bytes={}-\r\n", len - 10),
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &seg[len - 10..]);
    let r = get(addr, "/live/movie1.ts", &format!("Range: bytes={len}-\r\n"));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    // Several ranges: the whole file is a valid answer.
    let r = get(addr, "/live/movie1.ts", "Range: bytes=0-1,5-6\r\n");
    assert_eq!((r.status, r.body.len()), (200, len));

    // HEAD then GET on one keep-alive connection: HEAD has the length and no body, so the GET
    // that follows parses right.
    let mut s = connect(addr);
    s.write_all(
        b"HEAD /live/movie1.ts HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /live/movie.m3u8 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut rd = BufReader::new(s);
    let head = read_response(&mut rd, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(head.header("content-type"), Some("video/mp2t"));
    let next = read_response(&mut rd, false).unwrap();
    assert_eq!(next.status, 200);
    assert!(next.body.starts_with(b"#EXTM3U"), "{next:?}");
    let mut rest = Vec::new();
    let _ = rd.read_to_end(&mut rest);
    assert!(rest.is_empty(), "bytes after the last response: {rest:?}");

    // CORS preflight.
    let r = raw(
        addr,
        b"OPTIONS /live/movie1.ts HTTP/1.1\r\nHost: t\r\nOrigin: http://example.com\r\n\
          Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: range\r\n\
          Connection: close\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap_or("")
        .contains("GET"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap_or("")
        .contains("Range"));

    // The page and the script.
    let r = get(addr, "/", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = String::from_utf8_lossy(&r.body);
    assert!(page.contains("/live/movie.m3u8") && page.contains("/hls.min.js"));
    let r = get(addr, "/hls.min.js", "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(r.body, river::http::index::HLS_JS);
}

#[test]
fn two_hundred_concurrent_clients_are_all_served() {
    const CLIENTS: usize = 200;
    let h = start();
    let addr = h.local_addr();
    let dir = stream_dir();
    let playlist = std::fs::read(dir.join("movie.m3u8")).unwrap();
    let names = segments(&playlist);
    assert!(names.len() >= 6, "{names:?}");
    let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(
        names
            .iter()
            .map(|n| (n.clone(), std::fs::read(dir.join(n)).unwrap()))
            .collect(),
    );
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (files, barrier, playlist) =
                (Arc::clone(&files), Arc::clone(&barrier), playlist.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                barrier.wait();
                let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
                    .map_err(|e| format!("client {i}: connect: {e}"))?;
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut rd = BufReader::new(s);
                let mut fetch = |path: &str| -> Result<Vec<u8>, String> {
                    w.write_all(format!("GET /live/{path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                        .map_err(|e| format!("client {i}: {path}: {e}"))?;
                    let r = read_response(&mut rd, false)
                        .map_err(|e| format!("client {i}: {path}: {e}"))?;
                    if r.status != 200 {
                        return Err(format!("client {i}: {path}: status {}", r.status));
                    }
                    Ok(r.body)
                };
                let pl = fetch("movie.m3u8")?;
                if pl != playlist {
                    return Err(format!("client {i}: playlist differs"));
                }
                let mut bytes = pl.len() as u64;
                // Start at a different segment per client so every file is hot at once.
                let names = segments(&pl);
                for k in 0..names.len() {
                    let n = &names[(i + k) % names.len()];
                    let body = fetch(n)?;
                    if &body != files.get(n).unwrap() {
                        return Err(format!("client {i}: {n} differs"));
                    }
                    bytes += body.len() as u64;
                }
                Ok(bytes)
            })
        })
        .collect();
    let mut errors = Vec::new();
    let mut total = 0;
    for t in threads {
        match t.join().expect("client thread panicked") {
            Ok(b) => total += b,
            Err(e) => errors.push(e),
        }
    }
    assert!(started.elapsed() < DEADLINE, "took {:?}", started.elapsed());
    assert!(
        errors.is_empty(),
        "{} clients failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    let st = h.stats();
    let want = (CLIENTS * (names.len() + 1)) as u64;
    assert_eq!(st.ok, want, "{st:?}");
    assert_eq!(st.body_bytes, total, "{st:?}");
    assert_eq!(
        (st.client_errors, st.server_errors, st.write_errors),
        (0, 0, 0),
        "{st:?}"
    );
}

/// The earliest presentation time of a file's video and of its audio (ffprobe), in seconds.
fn start_times(path: &Path) -> (f64, f64) {
    let p = probe_packets(path);
    let start = |kind: &str| {
        p.iter()
            .filter(|x| x.kind == kind)
            .map(|x| x.pts)
            .fold(f64::MAX, f64::min)
    };
    (start("video"), start("audio"))
}

#[test]
fn hls_js_in_headless_chromium_plays_the_index_page() {
    let h = start();
    let url = format!("http://{}/", h.local_addr());
    // ffmpeg's clip (stream_dir, 8 s at 30 fps) presents its first picture after its first
    // audio (AAC priming and B-frame delay): hls.js seeks over that gap once at the start.
    let (video, audio) = start_times(&stream_dir().join("movie0.ts"));
    assert!(video > audio, "video starts at {video}, audio at {audio}");
    let played = crate::common::browser::play(&url, 5.0);
    played.assert_played(5.0, 30.0, StartGap::Allowed, &url);
    let st = h.stats();
    assert!(st.ok >= 4, "page, hls.js, playlist, segments: {st:?}");
}
