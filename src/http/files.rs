//! A small static HTTP server for HLS output: playlists and segments from a directory, a player
//! page, and nothing else.
//!
//! [`serve`] binds, starts its threads and returns at once; the caller (river-hls-seg `--serve`) keeps writing files and
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
//! Files go out with `sendfile` and carry an `ETag` (inode, length, modification time), so
//! `If-None-Match` gets 304 and `If-Range` works; a playlist replaced by rename gets a new tag.
//! Keep-alive, its idle timeout, the head limits and the connection cap are the HTTP layer's
//! ([`super::server`]); [`ServeOptions::workers`] reactor threads share the listening socket.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::hls::{cache_control, Cached, Live};
use super::path::{self, OpenError, Refused, Root, Target};
use super::response::{file_etag, reason};
use super::run::{spawn, Running};
use super::server::{Body, Handler, Options, Reply, ReqId, Request, Response};
use super::{index, mime};

/// Options for [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// URL path of the directory; `/` is added at either end when missing. Default `/live/`.
    pub prefix: String,
    /// Stream name the index page plays: `{prefix}{name}.m3u8`. Default `movie`.
    pub name: String,
    /// Reactor threads (at least 1), each serving the connections the kernel hands it. Default 2.
    pub workers: usize,
    /// `Cache-Control: public, max-age=N` for media segments; 0 means `no-cache`. Default 60
    /// (segment names may come back after a restart; see [`mime`]). A DVR archive with
    /// unique names can use 31536000.
    pub segment_max_age: u32,
    /// A response that makes no write progress for this long is dropped. Default 20 s.
    pub write_timeout: Duration,
    /// Media segments (`.ts`, `.m4s`, `.mp4`) are never rewritten under their name: `immutable`
    /// with a year's `max-age` ([`super::hls::cache_control`]), whatever `segment_max_age` says.
    pub immutable_segments: bool,
    /// The live playlist `{prefix}{name}.m3u8` is served from memory by this, with LL-HLS
    /// blocking requests, instead of from its file ([`super::hls`]).
    pub live: Option<Arc<Live>>,
    /// Keep-alive connections, head limits and the connection cap ([`Options`]); its
    /// `write_timeout` and `base_fields` are set from this struct.
    pub http: Options,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            prefix: "/live/".to_string(),
            name: "movie".to_string(),
            workers: 2,
            segment_max_age: 60,
            write_timeout: Duration::from_secs(20),
            immutable_segments: false,
            live: None,
            http: Options::default(),
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
    /// Accept errors (out of descriptors, and the like); accepting goes on after each.
    pub accept_errors: u64,
    /// 304 answers.
    pub not_modified: u64,
    /// Connections closed at once: over the connection cap, or shed for want of descriptors.
    pub refused: u64,
}

struct Ctx {
    root: Root,
    prefix: String,
    page: Bytes,
    segment_max_age: u32,
    immutable_segments: bool,
    live: Option<Arc<Live>>,
}

/// A running server. Dropping it shuts the server down, like [`ServerHandle::shutdown`].
pub struct ServerHandle {
    running: Running,
    ctx: Arc<Ctx>,
    playlist_path: String,
}

impl ServerHandle {
    /// The bound address (the real port when `addr` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr()
    }

    /// `http://ADDR{prefix}{name}.m3u8`, for the caller to print.
    pub fn playlist_url(&self) -> String {
        format!("http://{}{}", self.local_addr(), self.playlist_path)
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = self.running.counters();
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            requests: l(&c.requests),
            ok: l(&c.ok),
            client_errors: l(&c.client_errors),
            server_errors: l(&c.server_errors),
            write_errors: l(&c.write_errors),
            body_bytes: l(&c.body_bytes),
            accept_errors: l(&c.accept_errors),
            not_modified: l(&c.not_modified),
            refused: l(&c.refused),
        }
    }

    /// Stops accepting, lets the responses in hand be written (at most 2 s) and joins the
    /// threads; the port is closed when this returns.
    pub fn shutdown(self) {
        self.running.shutdown();
    }

    /// The canonical directory being served (for messages).
    pub fn root(&self) -> &Path {
        self.ctx.root.path()
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
    let prefix = normalise_prefix(&opts.prefix);
    let playlist_path = index::url_path_escape(&format!("{prefix}{}.m3u8", opts.name));
    let root = Root::open(root.clone()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("served directory {}: {e}", root.display()),
        )
    })?;
    let ctx = Arc::new(Ctx {
        root,
        page: Bytes::from(index::page(&prefix, &opts.name)),
        prefix,
        segment_max_age: opts.segment_max_age,
        immutable_segments: opts.immutable_segments,
        live: opts.live.clone(),
    });
    let http = Options {
        write_timeout: opts.write_timeout,
        base_fields: BASE_FIELDS.to_vec(),
        ..opts.http
    };
    let running = spawn(
        addr,
        Files(Arc::clone(&ctx)),
        http,
        opts.workers,
        "river-http",
    )?;
    if let Some(live) = &ctx.live {
        live.set_completer(running.completer());
    }
    Ok(ServerHandle {
        running,
        ctx,
        playlist_path,
    })
}

/// Fields on every response.
const BASE_FIELDS: &[(&str, &str)] = &[
    ("Server", "river"),
    ("Access-Control-Allow-Origin", "*"),
    (
        "Access-Control-Expose-Headers",
        "Content-Length, Content-Range, Accept-Ranges, ETag",
    ),
    ("X-Content-Type-Options", "nosniff"),
];

/// The handler: every request is answered at once (a file is opened, not read).
#[derive(Clone)]
struct Files(Arc<Ctx>);

fn status(code: u16, why: &str) -> Response {
    let r = Response::text(code, format!("{code} {}: {why}\n", reason(code)))
        .field("Cache-Control", "no-cache");
    if code == 405 {
        r.field("Allow", "GET, HEAD, OPTIONS")
    } else {
        r
    }
}

/// Bodies up to this size are read into memory and leave with the head in one write: for a
/// playlist of a few hundred bytes, `sendfile`'s page splicing costs more than the copy.
const READ_UP_TO: u64 = 16 * 1024;

/// The file as the body: read now when small (what it holds, should it have shrunk since its
/// length was taken), else sent from disk.
fn small_or_file(file: std::fs::File, len: u64) -> Body {
    if len > READ_UP_TO {
        return Body::File(file, len);
    }
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len as usize];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Body::File(file, len),
        }
    }
    buf.truncate(got);
    Body::Bytes(Bytes::from(buf))
}

fn content(body: Body, content_type: &'static str, cache: String) -> Response {
    let mut r = Response::new(200, body)
        .field("Cache-Control", cache)
        .field("Content-Type", content_type);
    r.ranges = true;
    r
}

impl Handler for Files {
    fn closed(&mut self, id: ReqId) {
        if let Some(l) = &self.0.live {
            l.closed(id);
        }
    }

    fn deadline(&self, server: u32) -> Option<Instant> {
        self.0.live.as_ref()?.deadline(server)
    }

    fn expire(&mut self, server: u32, now: Instant) -> Vec<(ReqId, Response)> {
        match &self.0.live {
            Some(l) => l.expire(server, now),
            None => Vec::new(),
        }
    }

    fn request(&mut self, req: &Request, now: Instant) -> Reply {
        let ctx = &self.0;
        match req.head.method.as_str() {
            "GET" | "HEAD" => {}
            "OPTIONS" => {
                return Reply::Now(
                    Response::new(204, Body::Empty)
                        .field("Allow", "GET, HEAD, OPTIONS")
                        .field("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
                        .field("Access-Control-Allow-Headers", "Range")
                        .field("Access-Control-Max-Age", "86400"),
                )
            }
            _ => return Reply::Now(status(405, "only GET, HEAD and OPTIONS are served")),
        }
        Reply::Now(match path::route(&req.head.target, &ctx.prefix) {
            Err(Refused::BadRequest(why)) => status(400, why),
            Err(Refused::Forbidden(why)) => status(403, why),
            Ok(Target::NotFound) => status(404, "not found"),
            Ok(Target::Index) => content(
                Body::Bytes(ctx.page.clone()),
                "text/html; charset=utf-8",
                "no-cache".to_string(),
            ),
            Ok(Target::HlsJs) => content(
                Body::Bytes(Bytes::from_static(index::HLS_JS)),
                "text/javascript; charset=utf-8",
                "public, max-age=86400".to_string(),
            ),
            Ok(Target::File(rel)) if ctx.live.is_some() => {
                let query = req.head.target.split_once('?').map_or("", |(_, q)| q);
                let query = query.split('#').next().unwrap_or("");
                let live = ctx.live.as_ref().expect("checked");
                match live.request(req, &rel, query, now) {
                    Some(reply) => return reply,
                    None => file(ctx, &rel),
                }
            }
            Ok(Target::File(rel)) => file(ctx, &rel),
        })
    }
}

/// The file `rel` under the root.
fn file(ctx: &Ctx, rel: &Path) -> Response {
    match path::open_under(&ctx.root, rel) {
        Ok((file, meta)) => {
            let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            let cache = if ctx.immutable_segments && mime::is_segment(rel) {
                cache_control(Cached::Media)
            } else {
                mime::cache_control(rel, ctx.segment_max_age)
            };
            let mut r = content(
                small_or_file(file, meta.len()),
                mime::content_type(rel),
                cache,
            );
            r.etag = Some(file_etag(meta.ino(), meta.len(), mtime));
            r
        }
        Err(OpenError::NotFound) => status(404, "not found"),
        Err(OpenError::Forbidden(why)) => status(403, why),
        Err(OpenError::Io(e))
            if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) =>
        {
            status(503, "out of file descriptors; retry").field("Retry-After", "1")
        }
        Err(OpenError::Io(_)) => status(500, "the file could not be read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix("/live/"), "/live/");
        assert_eq!(normalise_prefix("live"), "/live/");
        assert_eq!(normalise_prefix("/a/b"), "/a/b/");
        assert_eq!(normalise_prefix("/"), "/");
        assert_eq!(normalise_prefix(""), "/");
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
