//! The HTTP layer itself (`river::http::server`, `river::net`) on real sockets: keep-alive and its
//! idle timeout, head limits, the connection cap, ETag/304 and If-Range, parked requests completed
//! from another thread, streaming responses, the POST client's deadline, and accept surviving a
//! process out of file descriptors. Loopback only; every wait has a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use river::http::client;
use river::http::run::{spawn, Running};
use river::http::server::{Body, Handler, Options, Reply, ReqId, Request, Response, SendError};
use river::http::{serve, ServeOptions, ServerHandle};

use crate::common::*;

const IO: Duration = Duration::from_secs(10);

fn dir(name: &str) -> std::path::PathBuf {
    let d = tmpdir().join(format!("http-layer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("movie.m3u8"), b"#EXTM3U\n#EXT-X-VERSION:3\n").unwrap();
    let seg: Vec<u8> = (0..50_000u32).map(|i| (i % 199) as u8).collect();
    std::fs::write(d.join("movie0.ts"), seg).unwrap();
    d
}

fn start(name: &str, http: Options) -> ServerHandle {
    let opts = ServeOptions {
        http,
        ..ServeOptions::default()
    };
    serve("127.0.0.1:0", dir(name), opts).expect("serve")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO).expect("connect");
    s.set_read_timeout(Some(IO)).unwrap();
    s
}

/// One response from `r`: status, lower-case fields, body (by Content-Length, chunked, or to
/// the close when `to_close`); `head_only` reads no body.
fn response(r: &mut impl BufRead, head_only: bool) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {line:?}"));
    let mut fields = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if head_only || status == 304 || status == 204 {
    } else if get("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut c = vec![0; n + 2];
            r.read_exact(&mut c).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&c[..n]);
        }
    } else if let Some(n) = get("content-length") {
        body.resize(n.parse().unwrap(), 0);
        r.read_exact(&mut body).unwrap();
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    (status, fields, body)
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Reads until EOF; the time it took.
fn eof_after(s: &mut impl Read) -> Duration {
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "bytes before the close: {rest:?}");
    t.elapsed()
}

/// A client that sends its request and closes its side at once (the FIN may come in the same
/// event as the request) gets the answer and the close at once, not at the idle timeout.
#[test]
fn a_half_closed_client_is_answered_and_closed_at_once() {
    let h = start(
        "halfclose",
        Options {
            idle_timeout: Duration::from_secs(10),
            ..Options::default()
        },
    );
    for _ in 0..20 {
        let mut s = connect(h.local_addr());
        s.write_all(b"GET /live/movie.m3u8 HTTP/1.1\r\n\r\n")
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let t = Instant::now();
        let mut r = BufReader::new(s);
        assert_eq!(response(&mut r, false).0, 200);
        eof_after(&mut r);
        let took = t.elapsed();
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
}

#[test]
fn keep_alive_reuses_the_connection_then_idles_out() {
    let h = start(
        "keepalive",
        Options {
            idle_timeout: Duration::from_millis(800),
            ..Options::default()
        },
    );
    let s = connect(h.local_addr());
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..3 {
        w.write_all(b"GET /live/movie.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let (st, f, body) = response(&mut r, false);
        assert_eq!(st, 200);
        assert!(body.starts_with(b"#EXTM3U"));
        assert_eq!(field(&f, "connection"), None, "{f:?}");
        std::thread::sleep(Duration::from_millis(300)); // under the idle timeout
    }
    // HTTP/1.0 keep-alive on request, too.
    w.write_all(b"GET /live/movie.m3u8 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (st, f, _) = response(&mut r, false);
    assert_eq!((st, field(&f, "connection")), (200, Some("keep-alive")));
    let idle = eof_after(&mut r);
    assert!(
        idle >= Duration::from_millis(600) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
    let st = h.stats();
    assert_eq!((st.ok, st.write_errors), (4, 0), "{st:?}");
}

#[test]
fn request_line_and_head_limits() {
    let h = start("limits", Options::default());
    let addr = h.local_addr();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)).into_bytes(),
            414,
        ),
        (
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(9000)).into_bytes(),
            431,
        ),
        (
            format!("GET / HTTP/1.1\r\n{}\r\n", "X: 1\r\n".repeat(60)).into_bytes(),
            431,
        ),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(), 400),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (raw, want) in &cases {
        let mut s = connect(addr);
        // The server may answer and close before the whole request is in; a reset on write is
        // then expected.
        let _ = s.write_all(raw);
        let mut r = BufReader::new(s);
        let (st, f, body) = response(&mut r, false);
        assert_eq!(st, *want, "{}", String::from_utf8_lossy(&body));
        assert_eq!(field(&f, "connection"), Some("close"));
        eof_after(&mut r);
    }
    // A request line trickled past the limit is refused before it ends.
    let mut s = connect(addr);
    s.write_all(format!("GET /{}", "c".repeat(4200)).as_bytes())
        .unwrap();
    let (st, _, _) = response(&mut BufReader::new(s), false);
    assert_eq!(st, 414);
    assert_eq!(h.stats().client_errors, cases.len() as u64 + 1);
}

#[test]
fn connection_cap_answers_503_and_frees_with_a_close() {
    let h = start(
        "cap",
        Options {
            max_connections: 3,
            ..Options::default()
        },
    );
    let addr = h.local_addr();
    let get = |s: &TcpStream| {
        let mut w = s.try_clone().unwrap();
        w.write_all(b"GET /live/movie.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        response(&mut BufReader::new(s.try_clone().unwrap()), false).0
    };
    let held: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    for s in &held {
        assert_eq!(get(s), 200);
    }
    let over = connect(addr);
    let mut r = BufReader::new(over);
    let (st, _, body) = response(&mut r, false);
    assert_eq!(st, 503, "{}", String::from_utf8_lossy(&body));
    eof_after(&mut r);
    drop(held.into_iter().next());
    let t = Instant::now();
    loop {
        let s = connect(addr);
        let mut w = s.try_clone().unwrap();
        w.write_all(b"GET /live/movie.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let (st, _, _) = response(&mut BufReader::new(s), false);
        if st == 200 {
            break;
        }
        assert!(t.elapsed() < IO, "the freed place was not reused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(h.stats().refused >= 1);
}

#[test]
fn etag_if_none_match_if_range_and_head() {
    let h = start("etag", Options::default());
    let addr = h.local_addr();
    let s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut ask = |req: String, head: bool| {
        w.write_all(req.as_bytes()).unwrap();
        response(&mut r, head)
    };
    let (st, f, body) = ask("GET /live/movie0.ts HTTP/1.1\r\n\r\n".into(), false);
    assert_eq!((st, body.len()), (200, 50_000));
    let tag = field(&f, "etag").expect("an ETag").to_string();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    let (st, f, _) = ask(
        format!("GET /live/movie0.ts HTTP/1.1\r\nIf-None-Match: {tag}\r\n\r\n"),
        false,
    );
    assert_eq!(st, 304);
    assert_eq!(field(&f, "etag"), Some(tag.as_str()));
    assert_eq!(field(&f, "cache-control"), Some("public, max-age=60"));
    let (st, f, body) = ask(
        format!("GET /live/movie0.ts HTTP/1.1\r\nIf-Range: {tag}\r\nRange: bytes=10-19\r\n\r\n"),
        false,
    );
    assert_eq!((st, body.len()), (206, 10));
    assert_eq!(field(&f, "content-range"), Some("bytes 10-19/50000"));
    let (st, _, body) = ask(
        "GET /live/movie0.ts HTTP/1.1\r\nIf-Range: \"stale\"\r\nRange: bytes=10-19\r\n\r\n".into(),
        false,
    );
    assert_eq!((st, body.len()), (200, 50_000));
    let (st, f, _) = ask("HEAD /live/movie0.ts HTTP/1.1\r\n\r\n".into(), true);
    assert_eq!((st, field(&f, "content-length")), (200, Some("50000")));
    // A replaced playlist (write and rename, as river-hls-seg does) has a new tag.
    let (_, f, _) = ask("GET /live/movie.m3u8 HTTP/1.1\r\n\r\n".into(), false);
    let old = field(&f, "etag").unwrap().to_string();
    let d = h.root().to_path_buf();
    std::fs::write(d.join(".next"), b"#EXTM3U\n#EXT-X-VERSION:4\n").unwrap();
    std::fs::rename(d.join(".next"), d.join("movie.m3u8")).unwrap();
    let (st, f, _) = ask(
        format!("GET /live/movie.m3u8 HTTP/1.1\r\nIf-None-Match: {old}\r\n\r\n"),
        false,
    );
    assert_eq!(st, 200);
    assert_ne!(field(&f, "etag"), Some(old.as_str()));
    assert_eq!(h.stats().not_modified, 1);
}

/// A handler for the event tests: `/wait` parks (its id goes to the test), `/stream` streams,
/// `POST /echo` answers with its body once it is all in.
#[derive(Clone)]
struct Events {
    parked: mpsc::Sender<ReqId>,
    body: Vec<u8>,
}

impl Handler for Events {
    fn request(&mut self, req: &Request, _now: Instant) -> Reply {
        match (req.head.method.as_str(), req.head.target.as_str()) {
            ("GET", "/wait") | ("GET", "/stream") => {
                self.parked.send(req.id).unwrap();
                if req.head.target == "/stream" {
                    Reply::Stream(
                        Response::new(200, Body::Empty).field("Content-Type", "text/plain"),
                    )
                } else {
                    Reply::Park
                }
            }
            ("POST", "/echo") => {
                self.body.clear();
                Reply::Park
            }
            _ => Reply::Now(Response::text(404, "no\n")),
        }
    }

    fn body(&mut self, _id: ReqId, data: &[u8], end: bool) -> Option<Response> {
        self.body.extend_from_slice(data);
        end.then(|| {
            Response::new(
                200,
                Body::Bytes(Bytes::from(std::mem::take(&mut self.body))),
            )
        })
    }
}

fn events_server() -> (Running, mpsc::Receiver<ReqId>) {
    events_server_with(Options::default())
}

fn events_server_with(opts: Options) -> (Running, mpsc::Receiver<ReqId>) {
    let (tx, rx) = mpsc::channel();
    let h = Events {
        parked: tx,
        body: Vec::new(),
    };
    let r = spawn("127.0.0.1:0", h, opts, 1, "test-http").unwrap();
    (r, rx)
}

#[test]
fn a_parked_request_is_completed_by_an_event() {
    let (srv, parked) = events_server();
    let s = connect(srv.local_addr());
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(b"GET /wait HTTP/1.1\r\n\r\n").unwrap();
    let id = parked.recv_timeout(IO).expect("the request was parked");
    // Nothing is answered while the request waits.
    r.get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(
        r.get_mut().read(&mut b).is_err(),
        "answered before the event"
    );
    r.get_ref().set_read_timeout(Some(IO)).unwrap();
    let done = srv.completer();
    std::thread::spawn(move || done.complete(id, Response::text(200, "ready\n")));
    let (st, _, body) = response(&mut r, false);
    assert_eq!((st, body.as_slice()), (200, &b"ready\n"[..]));
    // The same connection goes on, and a stale id is ignored.
    srv.completer().complete(id, Response::text(500, "stale\n"));
    w.write_all(b"GET /other HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(response(&mut r, false).0, 404);
    // A parked request can also become a stream when its event comes (a watcher whose channel
    // goes live).
    w.write_all(b"GET /wait HTTP/1.1\r\n\r\n").unwrap();
    let id = parked.recv_timeout(IO).unwrap();
    let c = srv.completer();
    c.stream(id, Response::new(200, Body::Empty));
    c.send(id, Bytes::from_static(b"live"), IO).unwrap();
    c.end(id);
    let (st, f, body) = response(&mut r, false);
    assert_eq!((st, body.as_slice()), (200, &b"live"[..]));
    assert_eq!(field(&f, "transfer-encoding"), Some("chunked"));
}

#[test]
fn streams_are_chunked_on_1_1_and_close_delimited_on_1_0() {
    let (srv, parked) = events_server();
    for (version, chunked) in [("1.1", true), ("1.0", false)] {
        let s = connect(srv.local_addr());
        let mut w = s.try_clone().unwrap();
        w.write_all(format!("GET /stream HTTP/{version}\r\n\r\n").as_bytes())
            .unwrap();
        let id = parked.recv_timeout(IO).unwrap();
        let c = srv.completer();
        for piece in ["one ", "two ", "three"] {
            c.send(id, Bytes::from_static(piece.as_bytes()), IO)
                .unwrap();
        }
        c.end(id);
        let mut r = BufReader::new(s);
        let (st, f, body) = response(&mut r, false);
        assert_eq!((st, body.as_slice()), (200, &b"one two three"[..]));
        assert_eq!(
            field(&f, "transfer-encoding") == Some("chunked"),
            chunked,
            "{f:?}"
        );
        if chunked {
            // The connection serves the next request after the last chunk.
            w.write_all(b"GET /x HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(response(&mut r, false).0, 404);
        }
    }
}

/// A stream fed from another thread to a client that does not read: once the socket buffers and
/// the bounded outbox are full, `send` answers `Full` and queues nothing; the producer waits and
/// sends the same piece again. Every piece `send` accepted arrives, in order, none missing.
#[test]
fn a_cross_thread_stream_reports_a_full_outbox() {
    let (srv, parked) = events_server_with(Options {
        max_output: 64 * 1024,
        ..Options::default()
    });
    let s = connect(srv.local_addr());
    let mut w = s.try_clone().unwrap();
    w.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
    let id = parked.recv_timeout(IO).unwrap();
    let c = srv.completer();
    // Pieces of 16 KiB, each filled with its own number, so a missing one shows.
    let piece = |n: u32| Bytes::from(vec![(n % 251) as u8; 16 * 1024]);
    let mut n = 0u32;
    let t = Instant::now();
    loop {
        match c.send(id, piece(n), IO) {
            Ok(()) => n += 1,
            Err(SendError::Full) => break,
            Err(e) => panic!("piece {n}: {e:?}"),
        }
        // Loopback buffers take a few MiB at most; 256 MiB unread without `Full` is the bug.
        assert!(n < 16 * 1024, "never Full after {n} pieces unread");
        assert!(t.elapsed() < IO, "no Full within {IO:?} ({n} pieces)");
    }
    let full_at = n;
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        response(&mut r, false)
    });
    // The client now reads: the refused piece goes in once there is room, and a few more.
    let t = Instant::now();
    while n < full_at + 8 {
        match c.send(id, piece(n), IO) {
            Ok(()) => n += 1,
            Err(SendError::Full) => {
                assert!(t.elapsed() < IO, "still Full after {IO:?} of reading");
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("piece {n}: {e:?}"),
        }
    }
    c.end(id);
    let (st, _, body) = reader.join().unwrap();
    assert_eq!(st, 200);
    assert_eq!(body.len(), n as usize * 16 * 1024, "{n} pieces accepted");
    for (i, p) in body.chunks(16 * 1024).enumerate() {
        assert!(p.iter().all(|&b| b == (i as u32 % 251) as u8), "piece {i}");
    }
    // A stream that ended refuses further pieces as gone, and says so.
    assert_eq!(c.send(id, piece(0), IO), Err(SendError::Gone));
}

#[test]
fn post_client_gets_an_answer_and_keeps_its_deadline() {
    let (srv, _parked) = events_server();
    let url = format!("http://{}/echo", srv.local_addr());
    let r = client::post(&url, "application/json", b"{\"hook\":1}", IO).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"hook\":1}"[..]));
    let r = client::post(
        &format!("http://{}/nothing", srv.local_addr()),
        "text/plain",
        b"x",
        IO,
    )
    .unwrap();
    assert_eq!(r.status, 404);

    // A server that accepts and never answers: the POST fails at its deadline, not later.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let t = Instant::now();
    let e = client::post(&url, "text/plain", b"x", Duration::from_millis(700)).unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Nobody listening: refused at once, naming the peer.
    let port = silent.local_addr().unwrap().port();
    drop(silent);
    let e = client::post(
        &format!("http://127.0.0.1:{port}/hook"),
        "text/plain",
        b"x",
        IO,
    )
    .unwrap_err();
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

#[test]
fn accept_survives_running_out_of_descriptors() {
    // river-hls-seg --serve with at most 48 open files, and 120 connections held open at once.
    let d = dir("emfile");
    let mut child = Command::new("prlimit")
        .arg("--nofile=48:48")
        .arg(river("river-hls-seg"))
        .args(["--dir", d.to_str().unwrap(), "--serve", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs river-hls-seg");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("serving http://") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no URL on stderr");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let held: Vec<TcpStream> = (0..120).map(|_| connect(addr)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut shed = 0;
    for s in &held {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        match (&*s).read(&mut b) {
            Ok(0) => shed += 1,
            Ok(n) => panic!("{n} bytes unasked"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => shed += 1,
        }
    }
    assert!(shed > 0 && shed < 120, "shed {shed} of 120");
    drop(held);
    served_after_closes(addr);
    // Still accepting after a second wave.
    let held: Vec<TcpStream> = (0..120).map(|_| connect(addr)).collect();
    drop(held);
    served_after_closes(addr);
    let _ = child.kill();
    let _ = child.wait();
}

/// Until the server has seen the held connections close it may still be out of descriptors: it
/// sheds a new connection (closed or reset with no answer), or accepts it but cannot open a file
/// (503 with Retry-After). Retry those, within the deadline; any other answer must be the whole
/// index page (the playlist is served from memory once a first segment ends, and this
/// river-hls-seg is given no input, so the page is what it serves).
fn served_after_closes(addr: SocketAddr) {
    let t = Instant::now();
    loop {
        let s = connect(addr);
        let mut w = s.try_clone().unwrap();
        let _ = w.write_all(b"GET / HTTP/1.0\r\n\r\n");
        let mut buf = Vec::new();
        let _ = BufReader::new(s).read_to_end(&mut buf);
        if !buf.is_empty() && !buf.starts_with(b"HTTP/1.1 503") {
            let head = String::from_utf8_lossy(&buf[..buf.len().min(60)]).into_owned();
            assert!(buf.starts_with(b"HTTP/1.1 200"), "{head}");
            assert!(
                buf.ends_with(b"</html>\n"),
                "{}",
                String::from_utf8_lossy(&buf)
            );
            return;
        }
        assert!(t.elapsed() < IO, "not serving after the connections closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
