//! A small static HTTP server for HLS output: playlists and segments from a directory, a player
//! page, and nothing else.
//!
//! This is the one place in the library besides `net` that owns sockets: [`serve`] binds, starts
//! its threads and returns at once; the caller (river-hls-seg `--serve`) keeps writing files and
//! prints [`ServerHandle::local_addr`]. Nothing here prints; what happened is counted in
//! [`Stats`].
//!
//! Routes:
//! - `GET/HEAD {prefix}{path}`: the file `root/{path}`, streamed from disk, with its
//!   Content-Type ([`mime::content_type`]), caching ([`mime::cache_control`]: `no-cache` for
//!   playlists, `max-age` for segments), `Accept-Ranges: bytes` and one-range `Range` support
//!   (206/416). Hidden files (`.name`, where temp files go) are not served, nor directories.
//! - `GET/HEAD /` (and `/index.html`): a page that plays `{prefix}{name}.m3u8` with hls.js, or
//!   natively where the browser has HLS, muted and autoplaying, and shows the decoded frame count
//!   in `<pre id="status">frames: N</pre>`.
//! - `GET/HEAD /hls.min.js`: hls.js, embedded ([`index::HLS_JS`]).
//! - `OPTIONS *`: CORS preflight. Every response carries `Access-Control-Allow-Origin: *`.
//! - Any other method: 405.
//!
//! Refusals: a target that is not a path, a bad percent escape or NUL: 400; `..`, a backslash, a
//! hidden name, or a path (symlinks included) resolving outside the canonical root: 403; missing:
//! 404. See [`path`].
//!
//! Threads: tiny_http accepts on one thread and reads each connection on a pooled thread; `workers`
//! threads take the parsed requests from the shared queue and write the responses, so `workers`
//! bounds how many bodies are being sent at once. Every accepted socket inherits a send timeout
//! ([`ServeOptions::write_timeout`]) from the listener, so a client that stops reading frees its
//! worker after that long.

pub mod index;
pub mod mime;
pub mod path;
pub mod range;

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

use self::path::{OpenError, Refused, Target};
use self::range::{parse_range, ByteRange};

/// Options for [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// URL path of the directory; `/` is added at either end when missing. Default `/live/`.
    pub prefix: String,
    /// Stream name the index page plays: `{prefix}{name}.m3u8`. Default `movie`.
    pub name: String,
    /// Threads writing responses (at least 1). Default 16.
    pub workers: usize,
    /// `Cache-Control: public, max-age=N` for media segments; 0 means `no-cache`. Default 60
    /// (segment names may come back after a restart; see [`mime`]). A DVR archive with
    /// unique names can use 31536000.
    pub segment_max_age: u32,
    /// Longest a single socket write may block before the connection is dropped. Default 20 s.
    pub write_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            prefix: "/live/".to_string(),
            name: "movie".to_string(),
            workers: 16,
            segment_max_age: 60,
            write_timeout: Duration::from_secs(20),
        }
    }
}

/// Counters since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered (any status).
    pub requests: u64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Answers with a 4xx status.
    pub client_errors: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    /// Responses that could not be written completely (client gone or too slow).
    pub write_errors: u64,
    /// Body bytes of the responses that were written completely.
    pub body_bytes: u64,
    /// Errors from the accept thread (tiny_http stops accepting after one).
    pub accept_errors: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    write_errors: AtomicU64,
    body_bytes: AtomicU64,
    accept_errors: AtomicU64,
}

struct Ctx {
    root: PathBuf,
    prefix: String,
    page: Vec<u8>,
    segment_max_age: u32,
    stop: AtomicBool,
    counters: Counters,
}

/// A running server. Dropping it shuts the server down, like [`ServerHandle::shutdown`].
pub struct ServerHandle {
    addr: SocketAddr,
    server: Option<Arc<Server>>,
    workers: Vec<JoinHandle<()>>,
    ctx: Arc<Ctx>,
    playlist_path: String,
}

impl ServerHandle {
    /// The bound address (the real port when `addr` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR{prefix}{name}.m3u8`, for the caller to print.
    pub fn playlist_url(&self) -> String {
        format!("http://{}{}", self.addr, self.playlist_path)
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.ctx.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            requests: l(&c.requests),
            ok: l(&c.ok),
            client_errors: l(&c.client_errors),
            server_errors: l(&c.server_errors),
            write_errors: l(&c.write_errors),
            body_bytes: l(&c.body_bytes),
            accept_errors: l(&c.accept_errors),
        }
    }

    /// Lets every worker finish the response in hand (each write is bounded by the write
    /// timeout), joins the workers and stops the listener; the port is closed a moment later.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        self.ctx.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // The last reference: tiny_http's Drop raises its close flag and connects to the listener,
        // so its accept thread wakes, sees the flag, exits and closes the socket (a moment after
        // this returns; closing it from here with shutdown(2) would make tiny_http log an
        // accept error).
        drop(server);
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn normalise_prefix(p: &str) -> String {
    let mut s = String::with_capacity(p.len() + 2);
    if !p.starts_with('/') {
        s.push('/');
    }
    s.push_str(p);
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// Sets SO_SNDTIMEO on the listening socket; Linux copies it into every accepted socket.
/// (SO_RCVTIMEO would also time out `accept` itself, which tiny_http treats as fatal.)
fn set_send_timeout(listener: &TcpListener, d: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(d.subsec_micros()),
    };
    // SAFETY: a valid fd and a timeval of the size we pass.
    let r = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Binds `addr` (for example `0.0.0.0:9000`, or `127.0.0.1:0` for any free port) and serves
/// `root` on background threads until the handle is shut down or dropped. `root` must exist.
pub fn serve(addr: &str, root: PathBuf, opts: ServeOptions) -> io::Result<ServerHandle> {
    let root = root.canonicalize().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("served directory {}: {e}", root.display()),
        )
    })?;
    if !root.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("served directory {} is not a directory", root.display()),
        ));
    }
    let listener = TcpListener::bind(addr)?;
    if !opts.write_timeout.is_zero() {
        set_send_timeout(&listener, opts.write_timeout)?;
    }
    let local = listener.local_addr()?;
    let server = Arc::new(Server::from_listener(listener, None).map_err(io::Error::other)?);
    let prefix = normalise_prefix(&opts.prefix);
    let playlist_path = index::url_path_escape(&format!("{prefix}{}.m3u8", opts.name));
    let ctx = Arc::new(Ctx {
        root,
        page: index::page(&prefix, &opts.name).into_bytes(),
        prefix,
        segment_max_age: opts.segment_max_age,
        stop: AtomicBool::new(false),
        counters: Counters::default(),
    });
    let mut handle = ServerHandle {
        addr: local,
        server: Some(Arc::clone(&server)),
        workers: Vec::new(),
        ctx: Arc::clone(&ctx),
        playlist_path,
    };
    for i in 0..opts.workers.max(1) {
        let (s, c) = (Arc::clone(&server), Arc::clone(&ctx));
        let h = std::thread::Builder::new()
            .name(format!("river-http-{i}"))
            .spawn(move || worker(&s, &c))?; // on error, dropping `handle` stops the others
        handle.workers.push(h);
    }
    Ok(handle)
}

fn worker(server: &Server, ctx: &Ctx) {
    loop {
        match server.recv() {
            Ok(req) => handle(req, ctx),
            Err(_) if ctx.stop.load(Ordering::SeqCst) => return,
            Err(_) => {
                // The accept thread failed and has stopped; nothing more will arrive. Wait for
                // shutdown instead of spinning.
                ctx.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn base_headers() -> Vec<Header> {
    [
        ("Server", "river"),
        ("Access-Control-Allow-Origin", "*"),
        (
            "Access-Control-Expose-Headers",
            "Content-Length, Content-Range, Accept-Ranges",
        ),
        ("X-Content-Type-Options", "nosniff"),
    ]
    .iter()
    .filter_map(|(n, v)| header(n, v))
    .collect()
}

/// A body to send: a file on disk or bytes in memory.
enum Body {
    File(File),
    Memory(Cursor<Vec<u8>>),
    Static(Cursor<&'static [u8]>),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::File(f) => f.read(buf),
            Body::Memory(c) => c.read(buf),
            Body::Static(c) => c.read(buf),
        }
    }
}

impl Seek for Body {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Body::File(f) => f.seek(pos),
            Body::Memory(c) => c.seek(pos),
            Body::Static(c) => c.seek(pos),
        }
    }
}

/// What the router decided, before any byte is written.
enum Reply {
    /// A body with its length, type and caching.
    Content {
        body: Body,
        len: u64,
        content_type: &'static str,
        cache: String,
    },
    /// A status with a short text explanation.
    Status(u16, &'static str),
    /// The CORS preflight answer.
    Preflight,
}

fn route(method: &Method, url: &str, ctx: &Ctx) -> Reply {
    match method {
        Method::Get | Method::Head => {}
        Method::Options => return Reply::Preflight,
        _ => return Reply::Status(405, "only GET, HEAD and OPTIONS are served"),
    }
    match path::route(url, &ctx.prefix) {
        Err(Refused::BadRequest(why)) => Reply::Status(400, why),
        Err(Refused::Forbidden(why)) => Reply::Status(403, why),
        Ok(Target::NotFound) => Reply::Status(404, "not found"),
        Ok(Target::Index) => Reply::Content {
            len: ctx.page.len() as u64,
            body: Body::Memory(Cursor::new(ctx.page.clone())),
            content_type: "text/html; charset=utf-8",
            cache: "no-cache".to_string(),
        },
        Ok(Target::HlsJs) => Reply::Content {
            len: index::HLS_JS.len() as u64,
            body: Body::Static(Cursor::new(index::HLS_JS)),
            content_type: "text/javascript; charset=utf-8",
            cache: "public, max-age=86400".to_string(),
        },
        Ok(Target::File(rel)) => match path::open_under(&ctx.root, &rel) {
            Ok((file, len)) => Reply::Content {
                body: Body::File(file),
                len,
                content_type: mime::content_type(&rel),
                cache: mime::cache_control(&rel, ctx.segment_max_age),
            },
            Err(OpenError::NotFound) => Reply::Status(404, "not found"),
            Err(OpenError::Forbidden(why)) => Reply::Status(403, why),
            Err(OpenError::Io(_)) => Reply::Status(500, "the file could not be read"),
        },
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        _ => "Internal Server Error",
    }
}

fn handle(req: Request, ctx: &Ctx) {
    let find = |name: &'static str| {
        req.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let range_header = find("Range");
    // We send no validators, so an If-Range can never match: send the whole file.
    let range_header = if find("If-Range").is_some() {
        None
    } else {
        range_header
    };
    let mut headers = base_headers();
    let mut push = |n: &str, v: &str| {
        if let Some(h) = header(n, v) {
            headers.push(h);
        }
    };
    let (status, body, body_len): (u16, Body, u64) = match route(req.method(), req.url(), ctx) {
        Reply::Preflight => {
            push("Allow", "GET, HEAD, OPTIONS");
            push("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
            push("Access-Control-Allow-Headers", "Range");
            push("Access-Control-Max-Age", "86400");
            (204, Body::Static(Cursor::new(b"")), 0)
        }
        Reply::Status(code, why) => {
            if code == 405 {
                push("Allow", "GET, HEAD, OPTIONS");
            }
            push("Content-Type", "text/plain; charset=utf-8");
            push("Cache-Control", "no-cache");
            let text = format!("{code} {}: {why}\n", reason(code)).into_bytes();
            let n = text.len() as u64;
            (code, Body::Memory(Cursor::new(text)), n)
        }
        Reply::Content {
            mut body,
            len,
            content_type,
            cache,
        } => {
            push("Accept-Ranges", "bytes");
            push("Cache-Control", &cache);
            match parse_range(range_header.as_deref(), len) {
                ByteRange::Full => {
                    push("Content-Type", content_type);
                    (200, body, len)
                }
                r @ ByteRange::Partial { start, end } => {
                    push("Content-Type", content_type);
                    push("Content-Range", &format!("bytes {start}-{end}/{len}"));
                    match body.seek(SeekFrom::Start(start)) {
                        Ok(_) => (206, body, r.body_len(len)),
                        Err(_) => (500, Body::Static(Cursor::new(b"")), 0),
                    }
                }
                ByteRange::Unsatisfiable => {
                    push("Content-Range", &format!("bytes */{len}"));
                    (416, Body::Static(Cursor::new(b"")), 0)
                }
            }
        }
    };
    let c = &ctx.counters;
    c.requests.fetch_add(1, Ordering::Relaxed);
    match status {
        200..=299 => &c.ok,
        400..=499 => &c.client_errors,
        _ => &c.server_errors,
    }
    .fetch_add(1, Ordering::Relaxed);
    let Ok(data_len) = usize::try_from(body_len) else {
        c.write_errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let is_head = *req.method() == Method::Head;
    let response = Response::new(
        StatusCode(status),
        headers,
        body.take(body_len),
        Some(data_len),
        None,
    )
    // Always Content-Length, never chunked: HEAD and Range clients need the length.
    .with_chunked_threshold(usize::MAX);
    match req.respond(response) {
        Ok(()) => {
            if !is_head {
                c.body_bytes.fetch_add(body_len, Ordering::Relaxed);
            }
        }
        Err(_) => {
            c.write_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl ServerHandle {
    /// The canonical directory being served (for messages).
    pub fn root(&self) -> &Path {
        &self.ctx.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpStream;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix("/live/"), "/live/");
        assert_eq!(normalise_prefix("live"), "/live/");
        assert_eq!(normalise_prefix("/a/b"), "/a/b/");
        assert_eq!(normalise_prefix("/"), "/");
        assert_eq!(normalise_prefix(""), "/");
    }

    #[test]
    fn accepted_sockets_inherit_the_send_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        set_send_timeout(&l, Duration::from_millis(1500)).unwrap();
        let addr = l.local_addr().unwrap();
        let _c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        assert_eq!(
            s.write_timeout().unwrap(),
            Some(Duration::from_millis(1500))
        );
    }

    fn get(addr: SocketAddr, raw: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn serves_and_shuts_down() {
        let dir = std::env::temp_dir().join(format!("river-http-mod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("movie.m3u8"), b"#EXTM3U\n").unwrap();
        let h = serve("127.0.0.1:0", dir.clone(), ServeOptions::default()).unwrap();
        let addr = h.local_addr();
        assert_eq!(h.playlist_url(), format!("http://{addr}/live/movie.m3u8"));
        let r = get(
            addr,
            "GET /live/movie.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.ends_with("\r\n\r\n#EXTM3U\n"), "{r}");
        let r = get(
            addr,
            "DELETE /live/movie.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        let st = h.stats();
        assert_eq!((st.requests, st.ok, st.client_errors), (2, 1, 1));
        h.shutdown();
        let t = std::time::Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
            assert!(t.elapsed() < Duration::from_secs(10), "still listening");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
